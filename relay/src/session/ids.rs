//! The client's Request IDs (draft-ietf-moq-transport-18 §10.1): even, each
//! used once. "If an endpoint receives a Request ID where the least
//! significant bit is incorrect for the sender, or a duplicate Request ID, it
//! MUST close the session with INVALID_REQUEST_ID."
//!
//! Request streams arrive in any order and a request cancelled before the
//! relay read it leaves a gap forever, so "every ID below some floor was
//! seen" does not hold. The relay remembers instead the last [`WINDOW`]
//! client IDs below the largest one seen, one bit each (128 bytes a
//! session): a repeat within the window is caught, and an ID older than the
//! window — a request overtaken by more than 1,024 later ones, which no
//! client does — is taken without a check rather than remembered forever.

/// How many client Request IDs below the largest seen are remembered.
pub const WINDOW: u64 = 1024;

const WORDS: usize = (WINDOW / 64) as usize;

/// Why a client Request ID is refused; both close the session with
/// INVALID_REQUEST_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Odd: the client's Request IDs are even (§10.1).
    Parity,
    /// Already used in this session (§10.1).
    Duplicate,
}

impl Invalid {
    pub fn reason(self) -> &'static str {
        match self {
            Invalid::Parity => "client Request IDs must be even (§10.1)",
            Invalid::Duplicate => "duplicate Request ID (§10.1)",
        }
    }
}

/// The client Request IDs seen in one session.
#[derive(Debug, Default)]
pub struct RequestIds {
    /// One past the largest index (ID / 2) seen; 0 before any.
    top: u64,
    /// Bit `i % WINDOW` is set when index `i` (top - WINDOW <= i < top) was seen.
    seen: [u64; WORDS],
}

impl RequestIds {
    /// Records the client's Request ID `id`, or says why it is invalid.
    pub fn claim(&mut self, id: u64) -> Result<(), Invalid> {
        if id & 1 == 1 {
            return Err(Invalid::Parity);
        }
        let i = id / 2;
        if i >= self.top {
            // Forget the indices that fall out of the window.
            if i - self.top >= WINDOW {
                self.seen = [0; WORDS];
            } else {
                for j in self.top..i {
                    self.set(j, false);
                }
            }
            self.top = i + 1;
            self.set(i, true);
            return Ok(());
        }
        if self.top - i > WINDOW {
            return Ok(());
        }
        if self.get(i) {
            return Err(Invalid::Duplicate);
        }
        self.set(i, true);
        Ok(())
    }

    fn get(&self, i: u64) -> bool {
        let b = i % WINDOW;
        self.seen[(b / 64) as usize] & (1 << (b % 64)) != 0
    }

    fn set(&mut self, i: u64, on: bool) {
        let b = i % WINDOW;
        let w = &mut self.seen[(b / 64) as usize];
        if on {
            *w |= 1 << (b % 64);
        } else {
            *w &= !(1 << (b % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_and_repeated_ids_are_invalid_s10_1() {
        let mut ids = RequestIds::default();
        assert_eq!(ids.claim(1), Err(Invalid::Parity));
        assert_eq!(ids.claim(0), Ok(()));
        assert_eq!(ids.claim(0), Err(Invalid::Duplicate));
        // Out of order is fine; each ID once.
        assert_eq!(ids.claim(6), Ok(()));
        assert_eq!(ids.claim(2), Ok(()));
        assert_eq!(ids.claim(4), Ok(()));
        assert_eq!(ids.claim(2), Err(Invalid::Duplicate));
        assert_eq!(ids.claim(6), Err(Invalid::Duplicate));
    }

    #[test]
    fn the_window_slides_and_forgets_what_fell_out() {
        let mut ids = RequestIds::default();
        for i in 0..5000u64 {
            assert_eq!(ids.claim(2 * i), Ok(()), "{i}");
        }
        for i in (5000 - WINDOW)..5000 {
            assert_eq!(ids.claim(2 * i), Err(Invalid::Duplicate), "{i} is within the window");
        }
        // Older than the window: taken without a check.
        assert_eq!(ids.claim(2 * (5000 - WINDOW - 1)), Ok(()));
        // A jump beyond the window clears it; a gap left behind can be filled once.
        assert_eq!(ids.claim(2 * 100_000), Ok(()));
        assert_eq!(ids.claim(2 * 99_990), Ok(()));
        assert_eq!(ids.claim(2 * 99_990), Err(Invalid::Duplicate));
        assert_eq!(ids.claim(2 * 100_000), Err(Invalid::Duplicate));
    }
}
