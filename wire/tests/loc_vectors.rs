//! The `loc_redundant` section of docs/vectors/wire.json: the REDUNDANT_FRAME
//! object property (0x39, docs/design/quality.md §4.2) as moq-wire writes and
//! reads it; the web phone runs the same entries (webapp/test/loc_redundant.test.ts).

use moq_wire::loc::{self, Redundant};

mod common;
use common::*;

#[test]
fn redundant_frames_as_the_vectors_say() {
    let v = vectors();
    let (mut written, mut ignored) = (0, 0);
    for e in section(&v, "loc_redundant") {
        let (n, us, bytes) = (name(e), int(&e["capture_us"]), hex(&e["properties_hex"]));
        let want = (!e["redundant"].is_null()).then(|| Redundant { k: int(&e["redundant"]["k"]), opus: hex(&e["redundant"]["opus_hex"]) });
        if let Some(r) = &want {
            assert_eq!(to_hex(&loc::properties_with(us, Some((r.k, &r.opus)))), to_hex(&bytes), "{n}: writer");
            written += 1;
        } else {
            ignored += 1;
        }
        let f = loc::decode(&bytes, &[0xf8]).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!(f.capture_us, Some(us), "{n}");
        assert_eq!(f.redundant, want, "{n}: reader");
    }
    assert!(written >= 2 && ignored >= 3, "the section lost entries");
}
