//! linux.sysctl, written through /proc/sys from inside the container's namespaces (validation
//! has already limited the keys to namespaced ones).

use std::collections::HashMap;

use crate::error::{Error, Result};

pub fn apply(sysctls: &HashMap<String, String>) -> Result<()> {
    for (key, value) in sysctls {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| Error::io("write sysctl", format!("{key}={value}"), e))?;
    }
    Ok(())
}
