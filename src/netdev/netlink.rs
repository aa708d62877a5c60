//! The little of rtnetlink (rtnetlink(7)) moving a network device needs: look a link up, move
//! it to another network namespace under a new name, bring it up, read and add its
//! addresses. Messages are built and parsed by hand: a header, a fixed struct and
//! type-length-value attributes, all in native byte order.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;

pub const IFA_F_PERMANENT: u32 = 0x80;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
/// The address flags a caller may ask for (IFA_F_NODAD, HOMEADDRESS, PERMANENT,
/// MANAGETEMPADDR, NOPREFIXROUTE, MCAUTOJOIN); the rest are states the kernel reports.
const SETTABLE_ADDRESS_FLAGS: u32 = 0x02 | 0x10 | 0x80 | 0x100 | 0x200 | 0x400;

const HEADER: usize = 16;
const IFINFOMSG: usize = 16;
const IFADDRMSG: usize = 8;

/// An address of a link, with the attributes needed to add it again elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub family: u8,
    pub prefix_len: u8,
    pub scope: u8,
    pub flags: u32,
    /// IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST as they were reported.
    pub attrs: Vec<(u16, Vec<u8>)>,
}

impl Address {
    /// "10.1.2.3/24" (or the IPv6 form), for messages.
    pub fn display(&self) -> String {
        let raw = self
            .attrs
            .iter()
            .find(|(t, _)| *t == IFA_LOCAL)
            .or_else(|| self.attrs.iter().find(|(t, _)| *t == IFA_ADDRESS));
        let ip = match raw.map(|(_, b)| b.as_slice()) {
            Some(&[a, b, c, d]) => std::net::Ipv4Addr::new(a, b, c, d).to_string(),
            Some(b) if b.len() == 16 => {
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or_default()).to_string()
            }
            _ => "?".into(),
        };
        format!("{ip}/{}", self.prefix_len)
    }
}

/// A route netlink socket of one network namespace.
pub struct Socket {
    fd: OwnedFd,
    seq: std::cell::Cell<u32>,
}

impl Socket {
    /// In the network namespace this thread is in.
    pub fn open() -> nix::Result<Socket> {
        let fd = socket(AddressFamily::Netlink, SockType::Raw, SockFlag::SOCK_CLOEXEC, SockProtocol::NetlinkRoute)?;
        Ok(Socket { fd, seq: std::cell::Cell::new(1) })
    }

    /// In the network namespace `netns` refers to: a socket belongs to the namespace it was
    /// made in, so this thread visits it for the call and comes back. berth is
    /// single-threaded, so nothing else runs in the visited namespace meanwhile.
    pub fn open_in(netns: &File) -> nix::Result<Socket> {
        let own = File::open("/proc/thread-self/ns/net").map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
        setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)?;
        let sock = Socket::open();
        setns(own.as_fd(), CloneFlags::CLONE_NEWNET)?;
        sock
    }

    /// The index of the link named `name`.
    pub fn link_index(&self, name: &str) -> nix::Result<i32> {
        let mut m = Message::new(RTM_GETLINK, NLM_F_REQUEST, &[0; IFINFOMSG]);
        m.attr(IFLA_IFNAME, &nul_terminated(name));
        let replies = self.transact(m, false)?;
        replies
            .iter()
            .find(|(t, p)| *t == RTM_NEWLINK && p.len() >= IFINFOMSG)
            .map(|(_, p)| i32::from_ne_bytes([p[4], p[5], p[6], p[7]]))
            .ok_or(Errno::ENODEV)
    }

    /// The name of the link with index `index`.
    pub fn link_name(&self, index: i32) -> nix::Result<String> {
        let replies = self.transact(Message::new(RTM_GETLINK, NLM_F_REQUEST, &ifinfomsg(index, 0, 0)), false)?;
        let (_, payload) =
            replies.iter().find(|(t, p)| *t == RTM_NEWLINK && p.len() >= IFINFOMSG).ok_or(Errno::ENODEV)?;
        let name = attrs(&payload[IFINFOMSG..])
            .find(|(t, _)| *t == IFLA_IFNAME)
            .map(|(_, v)| String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or_default()).into_owned());
        name.ok_or(Errno::ENODEV)
    }

    /// Moves link `index` into the network namespace `netns`, named `name` there (the
    /// kernel fills in a `%d`).
    pub fn move_link(&self, index: i32, netns: &File, name: &str) -> nix::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_REQUEST, &ifinfomsg(index, 0, 0));
        m.attr(IFLA_NET_NS_FD, &(netns.as_raw_fd() as u32).to_ne_bytes());
        m.attr(IFLA_IFNAME, &nul_terminated(name));
        self.transact(m, false).map(drop)
    }

    /// Sets IFF_UP on link `index`.
    pub fn set_up(&self, index: i32) -> nix::Result<()> {
        let up = libc::IFF_UP as u32;
        self.transact(Message::new(RTM_NEWLINK, NLM_F_REQUEST, &ifinfomsg(index, up, up)), false).map(drop)
    }

    /// Every address of link `index`.
    pub fn addresses(&self, index: i32) -> nix::Result<Vec<Address>> {
        let replies = self.transact(Message::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, &[0; IFADDRMSG]), true)?;
        let mut out = Vec::new();
        for (_, p) in replies.iter().filter(|(t, p)| *t == RTM_NEWADDR && p.len() >= IFADDRMSG) {
            if u32::from_ne_bytes([p[4], p[5], p[6], p[7]]) as i32 != index {
                continue;
            }
            let mut a =
                Address { family: p[0], prefix_len: p[1], flags: u32::from(p[2]), scope: p[3], attrs: Vec::new() };
            for (t, v) in attrs(&p[IFADDRMSG..]) {
                match t {
                    IFA_FLAGS if v.len() >= 4 => a.flags = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]),
                    IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST => a.attrs.push((t, v.to_vec())),
                    _ => {}
                }
            }
            out.push(a);
        }
        Ok(out)
    }

    /// Adds `a` to link `index`.
    pub fn add_address(&self, index: i32, a: &Address) -> nix::Result<()> {
        let flags = a.flags & SETTABLE_ADDRESS_FLAGS;
        let mut fixed = [a.family, a.prefix_len, flags as u8, a.scope, 0, 0, 0, 0];
        fixed[4..].copy_from_slice(&(index as u32).to_ne_bytes());
        let mut m = Message::new(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL, &fixed);
        for (t, v) in &a.attrs {
            m.attr(*t, v);
        }
        m.attr(IFA_FLAGS, &flags.to_ne_bytes());
        self.transact(m, false).map(drop)
    }

    /// Sends `m` and collects the replies: until NLMSG_DONE for a dump, else until the
    /// acknowledgement. A negative acknowledgement is the errno.
    fn transact(&self, mut m: Message, dump: bool) -> nix::Result<Vec<(u16, Vec<u8>)>> {
        let seq = self.seq.get();
        self.seq.set(seq.wrapping_add(1));
        if !dump {
            m.set_flag(NLM_F_ACK);
        }
        let bytes = m.finish(seq);
        sendto(self.fd.as_raw_fd(), &bytes, &NetlinkAddr::new(0, 0), MsgFlags::empty())?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            let mut rest = &buf[..n];
            while rest.len() >= HEADER {
                let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if len < HEADER || len > rest.len() {
                    return Err(Errno::EBADMSG);
                }
                let kind = u16::from_ne_bytes([rest[4], rest[5]]);
                let their_seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
                let payload = &rest[HEADER..len];
                rest = &rest[align(len).min(rest.len())..];
                if their_seq != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = payload
                            .get(..4)
                            .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                            .unwrap_or(-libc::EBADMSG);
                        if code != 0 {
                            return Err(Errno::from_raw(-code));
                        }
                        if !dump {
                            return Ok(out);
                        }
                    }
                    _ => out.push((kind, payload.to_vec())),
                }
            }
        }
    }
}

struct Message {
    buf: Vec<u8>,
}

impl Message {
    fn new(kind: u16, flags: u16, fixed: &[u8]) -> Message {
        let mut buf = vec![0u8; HEADER];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(fixed);
        Message { buf }
    }

    fn set_flag(&mut self, flag: u16) {
        let flags = u16::from_ne_bytes([self.buf[6], self.buf[7]]) | flag;
        self.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        self.buf.resize(align(self.buf.len()), 0);
        self.buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        self.buf.resize(align(self.buf.len()), 0);
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> [u8; IFINFOMSG] {
    let mut m = [0u8; IFINFOMSG];
    m[4..8].copy_from_slice(&index.to_ne_bytes());
    m[8..12].copy_from_slice(&flags.to_ne_bytes());
    m[12..16].copy_from_slice(&change.to_ne_bytes());
    m
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The (type, value) attributes in `buf`.
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            return None;
        }
        let value = &buf[4..len];
        buf = &buf[align(len).min(buf.len())..];
        Some((kind, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_laid_out_as_the_kernel_reads_them() {
        let mut m = Message::new(RTM_GETLINK, NLM_F_REQUEST, &ifinfomsg(7, 1, 1));
        m.attr(IFLA_IFNAME, &nul_terminated("eth0"));
        let b = m.finish(42);
        assert_eq!(b.len(), HEADER + IFINFOMSG + 4 + 8);
        assert_eq!(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize, b.len());
        assert_eq!(u32::from_ne_bytes([b[8], b[9], b[10], b[11]]), 42);
        assert_eq!(i32::from_ne_bytes([b[20], b[21], b[22], b[23]]), 7);
        let a: Vec<_> = attrs(&b[HEADER + IFINFOMSG..]).collect();
        assert_eq!(a, vec![(IFLA_IFNAME, &b"eth0\0"[..])]);
    }

    /// The loopback link of this process's namespace is always there.
    #[test]
    fn looks_up_loopback() {
        let Ok(s) = Socket::open() else { return };
        let index = s.link_index("lo").unwrap();
        assert_eq!(s.link_name(index).unwrap(), "lo");
        assert_eq!(s.link_index("no-such-link0"), Err(Errno::ENODEV));
    }

    #[test]
    fn addresses_display() {
        let a = Address {
            family: 2,
            prefix_len: 24,
            scope: 0,
            flags: IFA_F_PERMANENT,
            attrs: vec![(IFA_LOCAL, vec![10, 1, 2, 3])],
        };
        assert_eq!(a.display(), "10.1.2.3/24");
    }
}
