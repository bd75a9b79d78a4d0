//! HTTP requests to a Unix socket made with another user's credentials, for access tests.
//!
//! The credentials are changed on one short-lived thread only, with raw system calls: Linux
//! keeps credentials per thread (glibc's wrappers would change every thread of the test),
//! and a Unix socket's peer credentials are the connecting thread's.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// A user, its primary group and its supplementary groups.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// The status and body of one answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Sends `method path` with `body` (JSON) to `socket` as `who`.
pub fn request_as(
    who: &Credentials,
    socket: &Path,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<Answer> {
    let (who, socket) = (who.clone(), PathBuf::from(socket));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: netctl\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    std::thread::spawn(move || {
        become_user(&who)?;
        let mut stream = UnixStream::connect(&socket)?;
        stream.write_all(request.as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        parse(&answer)
    })
    .join()
    .expect("request thread")
}

/// Changes this thread's groups, gid and uid (real, effective and saved).
fn become_user(who: &Credentials) -> std::io::Result<()> {
    let check = |rc: libc::c_long| {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let groups: Vec<libc::gid_t> = who.groups.clone();
    // SAFETY: raw syscalls that change only the calling thread's credentials; `groups`
    // outlives the call.
    unsafe {
        check(libc::syscall(
            libc::SYS_setgroups,
            groups.len(),
            groups.as_ptr(),
        ))?;
        check(libc::syscall(
            libc::SYS_setresgid,
            who.gid,
            who.gid,
            who.gid,
        ))?;
        check(libc::syscall(
            libc::SYS_setresuid,
            who.uid,
            who.uid,
            who.uid,
        ))?;
    }
    Ok(())
}

fn parse(answer: &str) -> std::io::Result<Answer> {
    let bad = || std::io::Error::other(format!("not an HTTP answer: {answer:?}"));
    let status = answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .ok_or_else(bad)?;
    Ok(Answer { status, body })
}
