//! What one lane is calling right now, and in which step, for the
//! worker's watchdog.
//!
//! A call that never returns cannot report itself. So each lane writes,
//! before each call, its number and when it began into a slot of its own
//! (two relaxed stores into a cache line nobody else writes), and clears it
//! after; the worker's main thread reads every slot once per interval (see
//! `worker::board`). When the plugin times a step (`rec.measure`,
//! `rec.start`), the lane also copies the step's name here as it begins
//! and marks it ended when its measurement is recorded, so a stuck call is
//! named with the step it is in (`in step "login"`) or last finished
//! (`after step "login"`). A plugin that times no step pays nothing more
//! per call; a step costs one short copy.
//!
//! The step is written by its lane alone and read by the main thread with
//! no lock, as a sequence lock: the writer makes the sequence odd, copies,
//! then makes it even again, and the reader keeps what it read only if the
//! sequence was the same even number before and after. Whatever it reads
//! is turned into text without trusting it to be UTF-8, so even a read the
//! check missed cannot put invalid text into a report.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::protocol::CallStep;

/// The bytes of a step's name kept: longer names are cut, at a character
/// boundary.
pub const STEP_NAME_BYTES: usize = 48;
const WORDS: usize = STEP_NAME_BYTES / 8;

/// In the step word: the name's length in its low byte, then whether the
/// step has ended, then the sequence number.
const LEN_MASK: u64 = 0xff;
const ENDED: u64 = 1 << 8;
const SEQ_SHIFT: u32 = 16;

/// One lane's slot, on cache lines nobody else writes.
#[repr(align(64))]
#[derive(Default)]
pub struct CallSlot {
    number: AtomicU64,
    /// Raw clock reading when the current call began; 0 between calls.
    since: AtomicU64,
    /// The step's length, ended flag and sequence (see [`ENDED`]); 0 until
    /// the lane's first step.
    step: AtomicU64,
    /// The number of the call the step belongs to: a step of an earlier
    /// call says nothing about the current one.
    step_call: AtomicU64,
    step_name: [AtomicU64; WORDS],
}

impl CallSlot {
    /// A call with `number` begins at `since_raw` (a raw clock reading).
    #[inline(always)]
    pub fn calling(&self, number: u64, since_raw: u64) {
        self.number.store(number, Ordering::Relaxed);
        self.since.store(since_raw.max(1), Ordering::Relaxed);
    }

    /// The call returned.
    #[inline(always)]
    pub fn idle(&self) {
        self.since.store(0, Ordering::Relaxed);
    }

    /// The number of the current call and when it began, or `None`
    /// between calls.
    pub fn current(&self) -> Option<(u64, u64)> {
        let since = self.since.load(Ordering::Relaxed);
        (since != 0).then(|| (self.number.load(Ordering::Relaxed), since))
    }

    /// The current call enters the step named by `name` (`ended` false), or
    /// records its measurement (`ended` true). Called by the slot's lane
    /// only.
    pub fn step(&self, name: &[u8], ended: bool) {
        let len = cut(name);
        let seq = self.step.load(Ordering::Relaxed) >> SEQ_SHIFT;
        // Odd: being written.
        self.step.store((seq + 1) << SEQ_SHIFT, Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, word) in self.step_name.iter().enumerate().take(len.div_ceil(8)) {
            let mut bytes = [0u8; 8];
            let part = &name[i * 8..len.min(i * 8 + 8)];
            bytes[..part.len()].copy_from_slice(part);
            word.store(u64::from_le_bytes(bytes), Ordering::Relaxed);
        }
        let number = self.number.load(Ordering::Relaxed);
        self.step_call.store(number, Ordering::Relaxed);
        let word = ((seq + 2) << SEQ_SHIFT) | if ended { ENDED } else { 0 } | len as u64;
        self.step.store(word, Ordering::Release);
    }

    /// The step of call `number`, if that call has begun or ended one;
    /// `None` also when the lane kept rewriting it while it was read.
    pub fn step_of(&self, number: u64) -> Option<CallStep> {
        for _ in 0..4 {
            let before = self.step.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if (before >> SEQ_SHIFT) % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let call = self.step_call.load(Ordering::Relaxed);
            let words = self
                .step_name
                .each_ref()
                .map(|word| word.load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if self.step.load(Ordering::Relaxed) != before {
                continue;
            }
            if call != number {
                return None;
            }
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            let len = ((before & LEN_MASK) as usize).min(STEP_NAME_BYTES);
            return Some(CallStep {
                name: String::from_utf8_lossy(&bytes[..len]).into_owned(),
                ended: before & ENDED != 0,
            });
        }
        None
    }
}

/// How many bytes of `name` the slot keeps: all, or the most that fit
/// without cutting a UTF-8 character in two.
fn cut(name: &[u8]) -> usize {
    if name.len() <= STEP_NAME_BYTES {
        return name.len();
    }
    (0..=STEP_NAME_BYTES)
        .rev()
        .find(|&i| name[i] & 0xc0 != 0x80)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, ended: bool) -> Option<CallStep> {
        Some(CallStep {
            name: name.to_string(),
            ended,
        })
    }

    #[test]
    fn a_call_is_in_the_step_it_began_then_after_it() {
        let slot = CallSlot::default();
        slot.calling(7, 100);
        assert_eq!(slot.step_of(7), None, "no step yet");
        slot.step(b"login", false);
        assert_eq!(slot.step_of(7), step("login", false));
        slot.step(b"login", true);
        assert_eq!(slot.step_of(7), step("login", true));
        slot.step(b"fetch", false);
        assert_eq!(slot.step_of(7), step("fetch", false));
    }

    /// A plugin built for ABI 3 never says a step begins: the host hears
    /// of it when its measurement is recorded, so a call stuck after it
    /// is said to be after it.
    #[test]
    fn a_step_only_recorded_reads_as_after_it() {
        let slot = CallSlot::default();
        slot.calling(3, 100);
        slot.step(b"prepare", true);
        assert_eq!(slot.step_of(3), step("prepare", true));
    }

    #[test]
    fn the_step_of_an_earlier_call_is_not_the_current_one() {
        let slot = CallSlot::default();
        slot.calling(1, 100);
        slot.step(b"login", false);
        slot.idle();
        assert_eq!(slot.current(), None);
        slot.calling(2, 200);
        assert_eq!(slot.current(), Some((2, 200)));
        assert_eq!(slot.step_of(2), None);
    }

    #[test]
    fn a_shorter_name_leaves_nothing_of_a_longer_one() {
        let slot = CallSlot::default();
        slot.calling(1, 100);
        slot.step(b"a rather long step name", false);
        slot.step(b"db", false);
        assert_eq!(slot.step_of(1), step("db", false));
    }

    #[test]
    fn a_long_name_is_cut_between_characters() {
        let slot = CallSlot::default();
        slot.calling(1, 100);
        // 47 ASCII bytes, then a 3-byte character across the 48th byte.
        let name = format!("{}€ and more", "x".repeat(47));
        slot.step(name.as_bytes(), false);
        assert_eq!(slot.step_of(1), step(&"x".repeat(47), false));
        let name = "é".repeat(30);
        slot.step(name.as_bytes(), false);
        assert_eq!(slot.step_of(1), step(&"é".repeat(24), false));
    }

    #[test]
    fn a_reader_never_sees_invalid_text_while_the_lane_writes() {
        let slot = CallSlot::default();
        slot.calling(1, 100);
        let names = ["é".repeat(24), "ab".repeat(20), "€".repeat(16)];
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                for i in 0..200_000 {
                    slot.step(names[i % 3].as_bytes(), i % 2 == 0);
                }
            });
            while !writer.is_finished() {
                if let Some(step) = slot.step_of(1) {
                    assert!(names.contains(&step.name), "{:?}", step.name);
                }
            }
        });
    }
}
