//! linux.seccomp -> classic BPF filters, compiled in the parent before the init exists and
//! loaded by the container process at the spawn sequence's seccomp point.
//!
//! seccompiler compiles each architecture's rules into a body; berth supplies what it lacks:
//! syscall tables for every architecture (tables.rs), a dispatcher over architectures (the
//! x86 family shares one audit value between x86_64 and x32), OCI's per-rule actions, and
//! SCMP_ACT_NOTIFY. Per-rule actions become stacked filters: a base filter where every rule
//! allows and anything else gets the default action, plus one filter per other action that
//! returns it on a match and allows otherwise. The kernel keeps the most severe verdict across
//! filters, so a matching rule's action wins and an unmatched call gets the default.

mod arch;
mod listener;
#[rustfmt::skip]
mod tables;

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall};
use seccompiler::{sock_filter, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};

pub use arch::SUPPORTED_ARCHES;
pub use listener::send_listener;

use crate::error::{Error, Result};

/// What seccomp(2) gets: the filters in load order, and the flags to load them with.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub filters: Vec<Filter>,
    pub flags: u32,
}

#[derive(Clone, Debug)]
pub struct Filter {
    pub program: Vec<sock_filter>,
    /// The filter holding NOTIFY rules is loaded with a listener fd for the engine.
    pub notify: bool,
}

impl Compiled {
    pub fn has_notify(&self) -> bool {
        self.filters.iter().any(|f| f.notify)
    }
}

const FLAG_TSYNC: u32 = 1;
const FLAG_LOG: u32 = 2;
const FLAG_SPEC_ALLOW: u32 = 4;
const FLAG_NEW_LISTENER: u32 = crate::sys::SECCOMP_FILTER_FLAG_NEW_LISTENER;
pub(crate) const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// The return value seccompiler is asked for where NOTIFY is meant; swapped for
/// SECCOMP_RET_USER_NOTIF after compilation (seccompiler has no such action).
const NOTIFY_MARK: u32 = 0x7a7a;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;

/// An action as the kernel will see it (ordering only groups equal actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Action {
    KillProcess,
    KillThread,
    Trap,
    Errno(u32),
    Notify,
    Trace(u32),
    Log,
    Allow,
}

impl Action {
    fn of(action: LinuxSeccompAction, errno: Option<u32>) -> Action {
        use LinuxSeccompAction as A;
        match action {
            // libseccomp's SCMP_ACT_KILL is the thread-killing action.
            A::ScmpActKill | A::ScmpActKillThread => Action::KillThread,
            A::ScmpActKillProcess => Action::KillProcess,
            A::ScmpActTrap => Action::Trap,
            A::ScmpActErrno => Action::Errno(errno.unwrap_or(libc::EPERM as u32)),
            A::ScmpActNotify => Action::Notify,
            A::ScmpActTrace => Action::Trace(errno.unwrap_or(libc::EPERM as u32)),
            A::ScmpActLog => Action::Log,
            A::ScmpActAllow => Action::Allow,
        }
    }

    fn seccompiler(self) -> SeccompAction {
        match self {
            Action::KillProcess => SeccompAction::KillProcess,
            Action::KillThread => SeccompAction::KillThread,
            Action::Trap => SeccompAction::Trap,
            Action::Errno(e) => SeccompAction::Errno(e),
            Action::Notify => SeccompAction::Trace(NOTIFY_MARK),
            Action::Trace(v) => SeccompAction::Trace(v),
            Action::Log => SeccompAction::Log,
            Action::Allow => SeccompAction::Allow,
        }
    }

    pub(crate) fn ret(self) -> u32 {
        match self {
            Action::Notify => SECCOMP_RET_USER_NOTIF,
            a => u32::from(a.seccompiler()),
        }
    }
}

/// A rule, arch-independent: syscall names and conditions (all must hold).
pub(crate) struct Rule<'a> {
    names: &'a [String],
    conditions: Vec<(u8, SeccompCmpOp, u64)>,
}

pub fn compile(s: &LinuxSeccomp) -> Result<Compiled> {
    let arches = arch::resolve(s.architectures().as_deref().unwrap_or_default())?;
    let default = Action::of(s.default_action(), s.default_errno_ret());
    let mut groups: BTreeMap<Action, Vec<Rule>> = BTreeMap::new();
    for sc in s.syscalls().iter().flatten() {
        let action = Action::of(sc.action(), sc.errno_ret());
        groups.entry(action).or_default().extend(rules(sc)?);
    }
    if groups.contains_key(&Action::Notify) && s.listener_path().is_none() {
        return Err(invalid("SCMP_ACT_NOTIFY rules need linux.seccomp.listenerPath"));
    }
    check_notify(s)?;
    let all: Vec<&Rule> = groups.values().flatten().collect();
    let mut filters = Vec::new();
    // The per-action filters first: once a filter is loaded it judges the next seccomp(2)
    // calls too, and the base filter is the one most likely to deny them.
    for (action, rules) in groups.iter().filter(|(a, _)| **a != Action::Allow) {
        let rules: Vec<&Rule> = rules.iter().collect();
        let programs = arch::build(&arches, &rules, *action, Action::Allow, Action::Allow)?;
        if *action == Action::Notify && programs.len() > 1 {
            return Err(invalid("NOTIFY rules need more than one filter; only one may carry the listener"));
        }
        filters.extend(programs.into_iter().map(|program| Filter { program, notify: *action == Action::Notify }));
    }
    let base = arch::build(&arches, &all, Action::Allow, default, Action::KillProcess)?;
    filters.extend(base.into_iter().map(|program| Filter { program, notify: false }));
    Ok(Compiled { filters, flags: flags(s) })
}

/// Syscalls a container process makes after loading its filter and before the NOTIFY listener
/// has reached the agent: notifying one of them would wait for an agent that cannot answer
/// yet. `write` as well, which runc refuses with the same words (and berth used to call).
const HANDS_OVER_THE_LISTENER: [&str; 2] = ["sendmsg", "write"];

fn check_notify(s: &LinuxSeccomp) -> Result<()> {
    if Action::of(s.default_action(), None) == Action::Notify {
        return Err(invalid("SCMP_ACT_NOTIFY cannot be used as default action"));
    }
    for sc in s.syscalls().iter().flatten().filter(|sc| Action::of(sc.action(), None) == Action::Notify) {
        if let Some(name) = sc.names().iter().find(|n| HANDS_OVER_THE_LISTENER.contains(&n.as_str())) {
            return Err(invalid(&format!("SCMP_ACT_NOTIFY cannot be used for the {name} syscall")));
        }
    }
    Ok(())
}

fn invalid(msg: &str) -> Error {
    Error::InvalidConfig(format!("seccomp: {msg}"))
}

/// A syscall entry's rules: one with all its conditions (all must hold) or, when two
/// conditions compare the same argument, one per condition (any may hold) — libseccomp cannot
/// AND two conditions on one argument, and runc falls back to OR for such entries; profiles
/// are written for that ("arg0 == 100 or arg0 == 9001").
fn rules(sc: &LinuxSyscall) -> Result<Vec<Rule<'_>>> {
    let all = rule(sc)?;
    let mut seen = [false; 6];
    let repeats = all.conditions.iter().any(|(i, _, _)| std::mem::replace(&mut seen[*i as usize], true));
    if !repeats {
        return Ok(vec![all]);
    }
    Ok(all.conditions.into_iter().map(|c| Rule { names: sc.names(), conditions: vec![c] }).collect())
}

fn rule(sc: &LinuxSyscall) -> Result<Rule<'_>> {
    let mut conditions = Vec::new();
    for arg in sc.args().iter().flatten() {
        if arg.index() > 5 {
            return Err(invalid(&format!("argument index {} of {:?} is above 5", arg.index(), sc.names())));
        }
        let op = match arg.op() {
            LinuxSeccompOperator::ScmpCmpNe => SeccompCmpOp::Ne,
            LinuxSeccompOperator::ScmpCmpLt => SeccompCmpOp::Lt,
            LinuxSeccompOperator::ScmpCmpLe => SeccompCmpOp::Le,
            LinuxSeccompOperator::ScmpCmpEq => SeccompCmpOp::Eq,
            LinuxSeccompOperator::ScmpCmpGe => SeccompCmpOp::Ge,
            LinuxSeccompOperator::ScmpCmpGt => SeccompCmpOp::Gt,
            // OCI's MASKED_EQ: (arg & value) == valueTwo.
            LinuxSeccompOperator::ScmpCmpMaskedEq => {
                conditions.push((arg.index() as u8, SeccompCmpOp::MaskedEq(arg.value()), arg.value_two().unwrap_or(0)));
                continue;
            }
        };
        conditions.push((arg.index() as u8, op, arg.value()));
    }
    Ok(Rule { names: sc.names(), conditions })
}

/// The rules of `rules` for one architecture, keyed by its syscall numbers. A syscall with an
/// unconditional rule matches whatever its other rules say (an empty rule list).
pub(crate) fn rules_for(
    rules: &[&Rule],
    number: impl Fn(&str) -> Option<i64>,
    arg_len: SeccompCmpArgLen,
) -> Result<BTreeMap<i64, Vec<SeccompRule>>> {
    let mut map: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for rule in rules {
        for name in rule.names {
            let Some(nr) = number(name) else {
                crate::logging::debug(&format!("seccomp: syscall {name:?} is unknown on this architecture, skipped"));
                continue;
            };
            let entry = map.entry(nr).or_insert_with(|| Some(Vec::new()));
            if rule.conditions.is_empty() {
                *entry = None;
                continue;
            }
            if let Some(list) = entry {
                let conds = rule
                    .conditions
                    .iter()
                    .map(|(i, op, v)| SeccompCondition::new(*i, arg_len.clone(), op.clone(), *v))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| invalid(&e.to_string()))?;
                list.push(SeccompRule::new(conds).map_err(|e| invalid(&e.to_string()))?);
            }
        }
    }
    Ok(map.into_iter().map(|(nr, rules)| (nr, rules.unwrap_or_default())).collect())
}

fn flags(s: &LinuxSeccomp) -> u32 {
    s.flags().iter().flatten().fold(0, |acc, f| {
        acc | match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => FLAG_WAIT_KILLABLE_RECV,
        }
    })
}

/// Loads every filter; returns the NOTIFY listener fd if one of them has it.
pub fn load(c: &Compiled) -> Result<Option<std::os::fd::OwnedFd>> {
    let mut listener = None;
    for f in &c.filters {
        let flags = if f.notify {
            // A listener filter cannot be TSYNC'd; WAIT_KILLABLE_RECV only means something here.
            (c.flags & !FLAG_TSYNC) | FLAG_NEW_LISTENER
        } else {
            c.flags & !FLAG_WAIT_KILLABLE_RECV
        };
        let fd = crate::sys::seccomp_set_filter(&f.program, flags)
            .map_err(|e| Error::sys("load seccomp filter", format!("{} instructions", f.program.len()), e))?;
        if f.notify {
            listener = fd;
        }
    }
    Ok(listener)
}

#[cfg(test)]
mod tests;
