//! The harness for runtime tests: builds busybox bundles and runs the berth binary.
