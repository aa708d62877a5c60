//! The config a run of an image generated, kept so that the next run of the same image with
//! the same request splices its own id in as the hostname instead of generating the config
//! again (the defaults, the image config, the user lookup, and the encoding: ~0.06 ms a run).
//!
//! A template sits beside the image's remembered resolution (resolved.rs) and is trusted on
//! the same terms: the naming file's identity must match, so it goes when the image changes,
//! and `gc` forgets both. It also repeats its request, which names the berth binary by its
//! identity: a berth built differently may generate a different config.

use std::os::unix::fs::MetadataExt;

use super::digest::Digest;
use super::resolved::Key;

/// What the config depends on besides the image: the reference as written, the command line,
/// the terminal, the rootfs mount point, and the berth binary that generates it. No part
/// holds a NUL (paths and arguments cannot), which separates the fields of a template file.
pub struct Request {
    text: String,
}

impl Request {
    pub fn new(image: &str, cmd: &[String], tty: bool, rootfs: &str) -> Request {
        let exe = std::fs::metadata("/proc/self/exe")
            .map(|m| format!("{}:{}:{}:{}.{}", m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
            .unwrap_or_default();
        let mut text = format!("{exe}\n{image}\n{tty}\n{rootfs}\n");
        // Each argument after its length: ["a b"] and ["a", "b"] must differ.
        for arg in cmd {
            text.push_str(&format!("{}:{arg}", arg.len()));
        }
        Request { text }
    }
}

/// A config with a hole where the hostname goes.
pub struct Template {
    /// The image's layers, for the caller to check they are still cached.
    pub layers: Vec<Digest>,
    config: Vec<u8>,
    /// Where the hostname's JSON string is in `config`: [start, end).
    hostname: (usize, usize),
}

/// The hostname a template is generated with, to be found again in the encoded config. A
/// control character: no container id has one, and no sensible image config either (if one
/// does, `make` finds it twice and declines).
pub const HOSTNAME_HOLE: &str = "\u{1}berth-hostname\u{1}";

impl Template {
    /// `config` was encoded with `HOSTNAME_HOLE` as its hostname; None when that is not found
    /// exactly once.
    pub fn make(config: Vec<u8>, layers: Vec<Digest>) -> Option<Template> {
        let needle = format!("\"hostname\":{}", serde_json::to_string(HOSTNAME_HOLE).ok()?);
        let find = |from: usize| {
            config.get(from..)?.windows(needle.len()).position(|w| w == needle.as_bytes()).map(|at| at + from)
        };
        let at = find(0)?;
        if find(at + 1).is_some() {
            return None;
        }
        let start = at + "\"hostname\":".len();
        Some(Template { layers, hostname: (start, at + needle.len()), config })
    }

    /// The config with `hostname` in the hole.
    pub fn fill(&self, hostname: &str) -> Vec<u8> {
        let value = serde_json::to_string(hostname).unwrap_or_else(|_| "\"\"".into());
        let (start, end) = self.hostname;
        let mut out = Vec::with_capacity(self.config.len() + value.len());
        out.extend_from_slice(&self.config[..start]);
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(&self.config[end..]);
        out
    }
}

/// One template per image file, for the latest request: a run with another command replaces
/// it, so their number stays that of the images run.
fn file(key: &Key) -> std::path::PathBuf {
    key.sibling("config")
}

/// A template file: identity, request, the layers' digests (space-separated), the hole's
/// start and end, and the config, NUL-separated. Read on every cached run, so kept plain.
const FIELDS: usize = 6;

/// The template for exactly this image file and request, if one was kept.
pub fn recall(key: &Key, request: &Request) -> Option<Template> {
    let bytes = std::fs::read(file(key)).ok()?;
    let mut fields = bytes.splitn(FIELDS, |&b| b == 0);
    let mut text = || fields.next().and_then(|f| std::str::from_utf8(f).ok());
    if text()? != key.identity() || text()? != request.text {
        return None;
    }
    let layers = text()?.split(' ').filter(|d| !d.is_empty()).map(Digest::parse).collect::<Option<Vec<_>>>()?;
    let hostname = (text()?.parse().ok()?, text()?.parse().ok()?);
    let config = fields.next()?.to_vec();
    if hostname.0 > hostname.1 || hostname.1 > config.len() {
        return None;
    }
    Some(Template { layers, config, hostname })
}

/// Best effort, on the terms of `resolved::remember`: a template not kept is only generated
/// again next time.
pub fn keep(key: &Key, request: &Request, template: &Template) {
    let layers: Vec<String> = template.layers.iter().map(Digest::to_string).collect();
    let (start, end) = template.hostname;
    let head = [key.identity(), &request.text, &layers.join(" "), &start.to_string(), &end.to_string()];
    let mut bytes = Vec::with_capacity(template.config.len() + 512);
    for field in head {
        bytes.extend_from_slice(field.as_bytes());
        bytes.push(0);
    }
    bytes.extend_from_slice(&template.config);
    key.store_beside(&file(key), &bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::parse(&format!("sha256:{}", "d".repeat(64))).unwrap()
    }

    fn encoded(hostname: &str, env: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "hostname": hostname, "process": { "env": [env] } })).unwrap()
    }

    #[test]
    fn fills_the_hole_with_the_id() {
        let t = Template::make(encoded(HOSTNAME_HOLE, "A=1"), vec![digest()]).unwrap();
        let filled: serde_json::Value = serde_json::from_slice(&t.fill("web-1")).unwrap();
        assert_eq!(filled["hostname"], "web-1");
        assert_eq!(filled["process"]["env"][0], "A=1");
    }

    #[test]
    fn declines_a_hole_it_cannot_tell_apart() {
        let twice = serde_json::json!({ "hostname": HOSTNAME_HOLE, "annotations": { "hostname": HOSTNAME_HOLE } });
        assert!(Template::make(serde_json::to_vec(&twice).unwrap(), vec![]).is_none());
        assert!(Template::make(encoded("plain", "A=1"), vec![]).is_none());
        // Inside a string the key's quotes are escaped: not a second hole.
        let quoted = format!("\"hostname\":{}", serde_json::to_string(HOSTNAME_HOLE).unwrap());
        let t = Template::make(encoded(HOSTNAME_HOLE, &quoted), vec![]).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&t.fill("c")).unwrap();
        assert_eq!((v["hostname"].as_str(), v["process"]["env"][0].as_str()), (Some("c"), Some(quoted.as_str())));
    }

    #[test]
    fn kept_for_its_request_only() {
        let tmp = tempfile::tempdir().unwrap();
        let archive = tmp.path().join("image.tar");
        std::fs::write(&archive, "x").unwrap();
        let key = Key::of(&tmp.path().join("@images"), &archive, None).unwrap().settled();
        let request = Request::new("image.tar", &["sh".into()], false, "/r");
        let t = Template::make(encoded(HOSTNAME_HOLE, "A=1"), vec![digest()]).unwrap();
        keep(&key, &request, &t);
        let back = recall(&key, &request).unwrap();
        assert_eq!(back.layers, vec![digest()]);
        assert_eq!(back.fill("c"), t.fill("c"));
        assert!(recall(&key, &Request::new("image.tar", &["ls".into()], false, "/r")).is_none());
        assert!(recall(&key, &Request::new("image.tar", &["sh".into()], true, "/r")).is_none());
        // The latest request replaces the template.
        let other = Request::new("image.tar", &["ls".into()], false, "/r");
        keep(&key, &other, &t);
        assert!(recall(&key, &request).is_none() && recall(&key, &other).is_some());
        std::fs::write(&archive, "y").unwrap();
        let changed = Key::of(&tmp.path().join("@images"), &archive, None).unwrap().settled();
        assert!(recall(&changed, &request).is_none());
    }
}
