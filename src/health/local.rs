//! Checks that fail on drover's side: recognising them, and logging them
//! without flooding the log.
//!
//! When drover runs out of file descriptors (or socket buffers, or ephemeral
//! ports), a probe fails before it reaches the member. That says nothing about
//! the member, so such a check is [`super::Verdict::Unknown`]: it neither
//! passes nor fails the rise/fall counter.

use std::error::Error;
use std::io;
use std::time::Duration;

use nix::errno::Errno;

/// At most one warning about locally failed checks per pool in this time
/// (a [`crate::rate_limit::RateLimit`]). 10 s.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// Whether an I/O error was raised on our side before anything reached the
/// member: out of file descriptors (`EMFILE`, `ENFILE`), of memory or socket
/// buffers (`ENOMEM`, `ENOBUFS`), of ephemeral ports (`EADDRNOTAVAIL`,
/// `EADDRINUSE` on connect), or a call that would block for lack of them (`EAGAIN`).
pub fn is_local(e: &io::Error) -> bool {
    let Some(code) = e.raw_os_error() else {
        return false;
    };
    matches!(
        Errno::from_raw(code),
        Errno::EMFILE
            | Errno::ENFILE
            | Errno::ENOMEM
            | Errno::ENOBUFS
            | Errno::EADDRNOTAVAIL
            | Errno::EADDRINUSE
            | Errno::EAGAIN
    )
}

/// Whether `e` or any error it was caused by is a local I/O error ([`is_local`]).
pub fn caused_locally(e: &(dyn Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<io::Error>().is_some_and(is_local) {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_buffers_or_ports_is_local() {
        for code in [
            Errno::EMFILE,
            Errno::ENFILE,
            Errno::ENOBUFS,
            Errno::EADDRNOTAVAIL,
        ] {
            assert!(
                is_local(&io::Error::from_raw_os_error(code as i32)),
                "{code}"
            );
        }
        for code in [
            Errno::ECONNREFUSED,
            Errno::ECONNRESET,
            Errno::ETIMEDOUT,
            Errno::EHOSTUNREACH,
        ] {
            assert!(
                !is_local(&io::Error::from_raw_os_error(code as i32)),
                "{code}"
            );
        }
        assert!(!is_local(&io::Error::other("no errno")));
    }

    #[test]
    fn a_local_cause_is_found_down_the_chain() {
        #[derive(Debug)]
        struct Wrap(io::Error);
        impl std::fmt::Display for Wrap {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("request failed")
            }
        }
        impl Error for Wrap {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let emfile = Wrap(io::Error::from_raw_os_error(Errno::EMFILE as i32));
        assert!(caused_locally(&emfile));
        let reset = Wrap(io::Error::from_raw_os_error(Errno::ECONNRESET as i32));
        assert!(!caused_locally(&reset));
    }
}
