//! Per-thread pooled read buffers: a connection takes one at accept and
//! gives it back when it closes, so keep-alive reads reuse the same memory
//! and a new connection rarely allocates. Each worker thread has its own
//! runtime, so a thread-local pool needs no lock.

use std::cell::RefCell;

use bytes::BytesMut;

/// Size of a fresh read buffer: 16 KiB.
pub const BUF_SIZE: usize = 16 * 1024;
/// Buffers kept per thread: 256 (4 MiB at most).
const KEEP: usize = 256;
/// A buffer grown beyond this (a large head) is not kept: 64 KiB.
const KEEP_MAX: usize = 64 * 1024;

thread_local! {
    static POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// A read buffer from this thread's pool, or a new one.
pub fn take() -> BytesMut {
    POOL.try_with(|p| p.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
}

/// Returns a buffer to this thread's pool (emptied; dropped if it is odd-sized or the pool is full).
pub fn give(mut b: BytesMut) {
    b.clear();
    if b.capacity() < BUF_SIZE || b.capacity() > KEEP_MAX {
        return;
    }
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < KEEP {
            p.push(b);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_on_the_same_thread() {
        let mut b = take();
        b.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let ptr = b.as_ptr();
        give(b);
        let again = take();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr);
        give(BytesMut::with_capacity(10));
        assert_ne!(take().capacity(), 10);
    }
}
