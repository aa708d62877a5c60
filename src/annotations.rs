//! Every `org.berth.*` annotation name berth reads or writes, in one leaf module: configs
//! name them to ask for something, `state` carries them to say what a container has, and
//! `features` lists what berth applies. Depends on nothing.

/// A bundle's config asks for the overlay rootfs (as `--rootfs-overlay` does): its rootfs
/// read-only below, a container layer on top.
pub const ROOTFS_OVERLAY: &str = "org.berth.rootfs.overlay";
/// In `state`: where the container layer (the overlay's upper directory) is.
pub const ROOTFS_LAYER: &str = "org.berth.rootfs.layer";
/// The image a container came from (`run --image`, and the bundle `unpack` writes).
pub const IMAGE: &str = "org.berth.image";
/// In `state`: an image container's cached lower layers, top first, ':'-separated; `images`
/// and `gc` read it to know which layers are in use.
pub const IMAGE_LAYERS: &str = "org.berth.image.layers";

/// `features`: what features.md has no field for yet.
pub mod features {
    pub const VERSION: &str = "org.berth.version";
    pub const COMMIT: &str = "org.berth.commit";
    pub const SCHEDULER_POLICIES: &str = "org.berth.process.scheduler.policies";
    pub const SCHEDULER_FLAGS: &str = "org.berth.process.scheduler.flags";
    pub const IO_PRIORITY_CLASSES: &str = "org.berth.process.ioPriority.classes";
    pub const EXEC_CPU_AFFINITY: &str = "org.berth.process.execCPUAffinity";
    pub const PERSONALITY_DOMAINS: &str = "org.berth.linux.personality.domains";
    pub const PERSONALITY_FLAGS: &str = "org.berth.linux.personality.flags";
    pub const PIDFD_SOCKET: &str = "org.berth.pidfdSocket";
}
