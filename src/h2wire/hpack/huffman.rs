//! HPACK's Huffman code (RFC 7541 §5.2, Appendix B): encoding with the code
//! table, decoding with a nibble-at-a-time state machine built once from it.
//!
//! The decoder walks the code tree four bits at a time: its states are the
//! tree's 256 inner nodes, and each (state, nibble) step was computed ahead by
//! walking those four bits down the tree (at most one symbol ends inside a
//! nibble, since the shortest code has 5 bits). A step says where it lands,
//! whether it emitted a symbol, whether the string may end there (the bits
//! since the last symbol are at most 7 ones: valid padding, §5.2) and whether
//! it failed (it reached EOS, which may not appear inside a string).

use std::sync::OnceLock;

use super::HpackError;

/// Appendix B: `(code, length in bits)` of each symbol, the code aligned to the
/// least significant bit; index 256 is EOS (30 ones).
#[rustfmt::skip]
const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), // 0..=3
    (0xfffffe4, 28), (0xfffffe5, 28), (0xfffffe6, 28), (0xfffffe7, 28), // 4..=7
    (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28), // 8..=11
    (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28), // 12..=15
    (0xfffffed, 28), (0xfffffee, 28), (0xfffffef, 28), (0xffffff0, 28), // 16..=19
    (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28), // 20..=23
    (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), // 24..=27
    (0xffffff8, 28), (0xffffff9, 28), (0xffffffa, 28), (0xffffffb, 28), // 28..=31
    (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12), // 32..=35
    (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), // 36..=39
    (0x3fa, 10), (0x3fb, 10), (0xf9, 8), (0x7fb, 11), // 40..=43
    (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6), // 44..=47
    (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6), // 48..=51
    (0x1a, 6), (0x1b, 6), (0x1c, 6), (0x1d, 6), // 52..=55
    (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8), // 56..=59
    (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), // 60..=63
    (0x1ffa, 13), (0x21, 6), (0x5d, 7), (0x5e, 7), // 64..=67
    (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7), // 68..=71
    (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7), // 72..=75
    (0x67, 7), (0x68, 7), (0x69, 7), (0x6a, 7), // 76..=79
    (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7), // 80..=83
    (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), // 84..=87
    (0xfc, 8), (0x73, 7), (0xfd, 8), (0x1ffb, 13), // 88..=91
    (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6), // 92..=95
    (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), // 96..=99
    (0x24, 6), (0x5, 5), (0x25, 6), (0x26, 6), // 100..=103
    (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7), // 104..=107
    (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), // 108..=111
    (0x2b, 6), (0x76, 7), (0x2c, 6), (0x8, 5), // 112..=115
    (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7), // 116..=119
    (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), // 120..=123
    (0x7fc, 11), (0x3ffd, 14), (0x1ffd, 13), (0xffffffc, 28), // 124..=127
    (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20), // 128..=131
    (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), // 132..=135
    (0x3fffd6, 22), (0x7fffda, 23), (0x7fffdb, 23), (0x7fffdc, 23), // 136..=139
    (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23), // 140..=143
    (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), // 144..=147
    (0xffffee, 24), (0x7fffe1, 23), (0x7fffe2, 23), (0x7fffe3, 23), // 148..=151
    (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23), // 152..=155
    (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), // 156..=159
    (0x3fffda, 22), (0x1fffdd, 21), (0xfffe9, 20), (0x3fffdb, 22), // 160..=163
    (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21), // 164..=167
    (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24), // 168..=171
    (0x1fffdf, 21), (0x3fffdf, 22), (0x7fffeb, 23), (0x7fffec, 23), // 172..=175
    (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21), // 176..=179
    (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), // 180..=183
    (0xfffea, 20), (0x3fffe2, 22), (0x3fffe3, 22), (0x3fffe4, 22), // 184..=187
    (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23), // 188..=191
    (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), // 192..=195
    (0x3fffe7, 22), (0x7ffff2, 23), (0x3fffe8, 22), (0x1ffffec, 25), // 196..=199
    (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27), // 200..=203
    (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), // 204..=207
    (0x7fff2, 19), (0x1fffe3, 21), (0x3ffffe6, 26), (0x7ffffe0, 27), // 208..=211
    (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24), // 212..=215
    (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), // 216..=219
    (0xffffffd, 28), (0x7ffffe3, 27), (0x7ffffe4, 27), (0x7ffffe5, 27), // 220..=223
    (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21), // 224..=227
    (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), // 228..=231
    (0x3fffea, 22), (0x3fffeb, 22), (0x1ffffee, 25), (0x1ffffef, 25), // 232..=235
    (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23), // 236..=239
    (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), // 240..=243
    (0x7ffffe7, 27), (0x7ffffe8, 27), (0x7ffffe9, 27), (0x7ffffea, 27), // 244..=247
    (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27), // 248..=251
    (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), // 252..=255
    (0x3fffffff, 30), // 256..=256
];

/// A decoding step emitted the symbol in [`Step::sym`].
const EMIT: u8 = 1;
/// The input may end after this step (padding so far valid).
const ACCEPT: u8 = 2;
/// The step reached EOS: a decoding error.
const FAIL: u8 = 4;

/// One precomputed step of the decoder: from a state, for one nibble.
#[derive(Clone, Copy, Default)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}

/// The decoder's state machine: 256 states (inner nodes of the code tree, the
/// root is 0) × 16 nibbles. Indexing it with a `u8` state and a masked nibble
/// can never be out of bounds.
struct Machine {
    steps: [[Step; 16]; 256],
}

/// A child in the code tree while it is being built.
#[derive(Clone, Copy)]
enum Child {
    Missing,
    Inner(u8),
    Leaf(u16),
}

/// The code tree: inner nodes (the root is 0), their children for bits 0 and 1,
/// their depth (bits from the root) and whether every bit on the way was a 1.
struct Tree {
    children: [[Child; 2]; 256],
    depth: [u8; 256],
    all_ones: [bool; 256],
}

impl Tree {
    /// Builds the tree from [`CODES`]. The table is a complete prefix code
    /// with 257 leaves, hence exactly 256 inner nodes (the tests check it);
    /// should it not be, the missing children make the decoder fail, it never
    /// panics.
    fn build() -> Tree {
        let mut tree = Tree {
            children: [[Child::Missing; 2]; 256],
            depth: [0; 256],
            all_ones: [false; 256],
        };
        tree.all_ones[0] = true;
        let mut inner: usize = 1;
        for (sym, &(code, len)) in (0u16..).zip(CODES.iter()) {
            let mut node: u8 = 0;
            for i in (0..len).rev() {
                let bit = usize::from((code >> i) & 1 == 1);
                let slot = &mut tree.children[usize::from(node)][bit];
                if i == 0 {
                    *slot = Child::Leaf(sym);
                    break;
                }
                node = match *slot {
                    Child::Inner(next) => next,
                    Child::Missing | Child::Leaf(_) => {
                        let Ok(next) = u8::try_from(inner) else {
                            break; // more inner nodes than a complete code has
                        };
                        inner += 1;
                        *slot = Child::Inner(next);
                        tree.depth[usize::from(next)] = tree.depth[usize::from(node)] + 1;
                        tree.all_ones[usize::from(next)] =
                            tree.all_ones[usize::from(node)] && bit == 1;
                        next
                    }
                };
            }
        }
        tree
    }

    /// The step from `state` for the four bits of `nibble` (most significant first).
    fn step(&self, state: u8, nibble: u8) -> Step {
        let mut node = state;
        let mut step = Step::default();
        for i in (0..4).rev() {
            let bit = usize::from((nibble >> i) & 1);
            match self.children[usize::from(node)][bit] {
                Child::Inner(next) => node = next,
                // EOS (256) is no byte: inside a string it is an error.
                Child::Leaf(sym) => match u8::try_from(sym) {
                    Ok(sym) => {
                        step.sym = sym;
                        step.flags |= EMIT;
                        node = 0;
                    }
                    Err(_) => return fail(),
                },
                Child::Missing => return fail(),
            }
        }
        step.next = node;
        let n = usize::from(node);
        if self.all_ones[n] && self.depth[n] <= 7 {
            step.flags |= ACCEPT;
        }
        step
    }
}

fn fail() -> Step {
    Step {
        flags: FAIL,
        ..Step::default()
    }
}

/// The state machine, built on first use.
fn machine() -> &'static Machine {
    static MACHINE: OnceLock<Box<Machine>> = OnceLock::new();
    MACHINE.get_or_init(|| {
        let tree = Tree::build();
        let mut m = Box::new(Machine {
            steps: [[Step::default(); 16]; 256],
        });
        for (state, row) in (0u8..=255).zip(m.steps.iter_mut()) {
            for (nibble, step) in (0u8..16).zip(row.iter_mut()) {
                *step = tree.step(state, nibble);
            }
        }
        m
    })
}

/// How many bytes [`encode`] makes of `src`.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(CODES[usize::from(b)].1))
        .sum();
    bits.div_ceil(8)
}

/// Appends the Huffman code of `src` to `dst`, the last byte padded with ones
/// (the most significant bits of EOS, §5.2).
pub fn encode(src: &[u8], dst: &mut Vec<u8>) {
    dst.reserve(encoded_len(src));
    // Bits not yet written, in the low `pending` bits of `acc` (at most 7 + 30).
    let mut acc: u64 = 0;
    let mut pending: u32 = 0;
    for &b in src {
        let (code, len) = CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        pending += u32::from(len);
        while pending >= 8 {
            pending -= 8;
            dst.push((acc >> pending) as u8);
        }
    }
    if pending > 0 {
        dst.push(((acc << (8 - pending)) as u8) | (0xff >> pending));
    }
}

/// Decodes the Huffman-coded `src`, appending the bytes to `dst` (which keeps
/// what it had). Errors with [`HpackError::BadHuffman`] when EOS appears, when
/// the padding is longer than 7 bits or not all ones; `dst` then holds part of
/// the output. No allocation beyond `dst`'s growth.
pub fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HpackError> {
    let steps = &machine().steps;
    // At most 8 / 5 bytes per byte of input (the shortest code is 5 bits).
    dst.reserve(src.len() + src.len() / 2 + 1);
    let mut state: u8 = 0;
    let mut accept = true;
    for &b in src {
        for nibble in [b >> 4, b & 0x0f] {
            let step = steps[usize::from(state)][usize::from(nibble & 0x0f)];
            if step.flags & FAIL != 0 {
                return Err(HpackError::BadHuffman);
            }
            if step.flags & EMIT != 0 {
                dst.push(step.sym);
            }
            state = step.next;
            accept = step.flags & ACCEPT != 0;
        }
    }
    if accept {
        Ok(())
    } else {
        Err(HpackError::BadHuffman)
    }
}

/// For the tests: the number of inner nodes of the code tree (256 for a
/// complete code of 257 symbols) and whether the code is prefix-free and
/// complete (Kraft sum exactly 1).
#[cfg(test)]
pub(super) fn tree_check() -> (usize, bool) {
    let tree = Tree::build();
    let inner = tree
        .children
        .iter()
        .filter(|c| !matches!(c, [Child::Missing, Child::Missing]))
        .count();
    let kraft: u64 = CODES
        .iter()
        .map(|&(_, len)| 1u64 << (30 - u32::from(len)))
        .sum();
    (inner, kraft == 1 << 30)
}
