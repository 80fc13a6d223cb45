//! One direction of an impaired network link, without I/O (issue 19): a
//! packet and the time it was sent go in, whether it is lost or when it
//! arrives comes out. `impair.rs` is the UDP shell around it; the tests here
//! drive it with explicit time.
//!
//! What a call meets on a bad Wi-Fi, a train or a congested uplink, and the
//! models used for it:
//! - random loss (Bernoulli);
//! - bursty loss: the two-state Gilbert model (Gilbert 1960; the Gilbert–
//!   Elliott family as ITU-T G.1050 and RFC 3611 §4.7.2 use it), set by its
//!   mean loss `p` and mean burst length `b`: bad → good with `1/b`,
//!   good → bad with `p / (b (1 - p))`, every packet lost in the bad state,
//!   so the long-run loss is `p`;
//! - delay and jitter: a base delay plus a uniform extra; by default
//!   packets keep their order (jitter from queueing, as on most links), or
//!   are reordered when `reorder` is set (multipath, Wi-Fi retries);
//! - a bandwidth cap: a bottleneck serialising at `rate` with a queue of at
//!   most `queue` of waiting (tail drop beyond), optionally shared with
//!   competing traffic: 1,200-byte packets at a constant rate, queued and
//!   tail-dropped like ours, so both lose in proportion when the queue is full;
//! - outages: time windows in which everything is lost (a hand-over).

use std::time::Duration;

/// Loss model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    None,
    /// Each packet lost with this probability.
    Random(f64),
    /// Gilbert model: mean loss and mean burst length (packets).
    Bursty {
        mean: f64,
        burst: f64,
    },
}

/// An impairment profile for one direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub loss: Loss,
    pub delay: Duration,
    /// Uniform extra delay in 0..jitter.
    pub jitter: Duration,
    /// Let jitter reorder packets (otherwise a packet never overtakes the previous one).
    pub reorder: bool,
    /// Bottleneck rate in bits per second, if capped.
    pub rate_bps: Option<u64>,
    /// Longest wait in the bottleneck's queue before tail drop.
    pub queue: Duration,
    /// Competing traffic through the bottleneck, bits per second.
    pub cross_bps: u64,
    /// (start, length) from the link's start: everything lost.
    pub outages: Vec<(Duration, Duration)>,
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            loss: Loss::None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: false,
            rate_bps: None,
            queue: Duration::from_millis(200),
            cross_bps: 0,
            outages: Vec::new(),
        }
    }
}

/// When an outage of a named profile starts (after the call settled).
pub const OUTAGE_AT: Duration = Duration::from_secs(10);

impl Profile {
    /// The named profiles of `bench/quality` (issue 19): clean; 1/3/5/10 %
    /// random loss; 5 % bursty loss with bursts of 3; 20 and 60 ms jitter;
    /// a 500 kbit/s cap with 300 kbit/s of competing traffic; 300 ms and
    /// 2 s outages. Every profile has 10 ms of base delay each way.
    pub fn named(name: &str) -> Option<Profile> {
        let base = Profile { delay: Duration::from_millis(10), ..Profile::default() };
        let ms = Duration::from_millis;
        Some(match name {
            "clean" => base,
            "loss1" => Profile { loss: Loss::Random(0.01), ..base },
            "loss3" => Profile { loss: Loss::Random(0.03), ..base },
            "loss5" => Profile { loss: Loss::Random(0.05), ..base },
            "loss10" => Profile { loss: Loss::Random(0.10), ..base },
            "bursty5" => Profile { loss: Loss::Bursty { mean: 0.05, burst: 3.0 }, ..base },
            "jitter20" => Profile { jitter: ms(20), ..base },
            "jitter60" => Profile { jitter: ms(60), ..base },
            "loss2-jitter20" => Profile { loss: Loss::Random(0.02), jitter: ms(20), ..base },
            "cap500k" => Profile { rate_bps: Some(500_000), cross_bps: 300_000, queue: ms(200), ..base },
            "outage300ms" => Profile { outages: vec![(OUTAGE_AT, ms(300))], ..base },
            "outage2s" => Profile { outages: vec![(OUTAGE_AT, ms(2000))], ..base },
            _ => return None,
        })
    }

    /// Every named profile, in table order.
    pub const NAMES: [&'static str; 12] = [
        "clean",
        "loss1",
        "loss3",
        "loss5",
        "loss10",
        "bursty5",
        "jitter20",
        "jitter60",
        "loss2-jitter20",
        "cap500k",
        "outage300ms",
        "outage2s",
    ];
}

/// Why a packet was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lost {
    Random,
    Burst,
    Queue,
    Outage,
}

/// What becomes of one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Lost(Lost),
    /// Arrives at this time (from the link's start).
    Arrives(Duration),
}

/// Competing traffic's packet size (a full-size TCP segment).
const CROSS_PACKET: usize = 1200;

/// xorshift64: deterministic per seed, no dependency.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One direction of a link.
#[derive(Debug, Clone)]
pub struct Link {
    p: Profile,
    rng: Rng,
    /// Gilbert state: in a burst.
    bad: bool,
    /// The bottleneck is busy serialising until then.
    busy_until: Duration,
    /// When the next competing packet is sent.
    cross_at: Duration,
    /// The last arrival handed out (no overtaking unless `reorder`).
    last_arrival: Duration,
}

impl Link {
    pub fn new(p: Profile, seed: u64) -> Self {
        Self {
            p,
            rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            bad: false,
            busy_until: Duration::ZERO,
            cross_at: Duration::ZERO,
            last_arrival: Duration::ZERO,
        }
    }

    /// A packet of `len` bytes sent at `now` (from the link's start; calls
    /// come in non-decreasing `now`).
    pub fn send(&mut self, now: Duration, len: usize) -> Fate {
        if self.p.outages.iter().any(|&(s, l)| now >= s && now < s + l) {
            return Fate::Lost(Lost::Outage);
        }
        match self.p.loss {
            Loss::None => {}
            Loss::Random(p) => {
                if self.rng.unit() < p {
                    return Fate::Lost(Lost::Random);
                }
            }
            Loss::Bursty { mean, burst } => {
                let burst = burst.max(1.0);
                let to_bad = (mean / (burst * (1.0 - mean))).clamp(0.0, 1.0);
                let u = self.rng.unit();
                self.bad = if self.bad { u >= 1.0 / burst } else { u < to_bad };
                if self.bad {
                    return Fate::Lost(Lost::Burst);
                }
            }
        }
        let mut at = now;
        if let Some(rate) = self.p.rate_bps.filter(|r| *r > 0) {
            // Competing packets sent up to now go through the bottleneck first, under the same tail drop.
            if self.p.cross_bps > 0 {
                let gap = Duration::from_secs_f64(CROSS_PACKET as f64 * 8.0 / self.p.cross_bps as f64);
                while self.cross_at <= now {
                    let t = self.cross_at;
                    let _ = self.enqueue(t, CROSS_PACKET, rate);
                    self.cross_at += gap;
                }
            }
            match self.enqueue(now, len, rate) {
                Some(done) => at = done,
                None => return Fate::Lost(Lost::Queue),
            }
        }
        at += self.p.delay + self.p.jitter.mul_f64(self.rng.unit());
        if !self.p.reorder {
            at = at.max(self.last_arrival);
            self.last_arrival = at;
        }
        Fate::Arrives(at)
    }
}

impl Link {
    /// A packet of `len` bytes reaching the bottleneck at `t`: when its last
    /// bit leaves, or `None` (tail drop: it would wait longer than `queue`).
    fn enqueue(&mut self, t: Duration, len: usize, rate: u64) -> Option<Duration> {
        let start = self.busy_until.max(t);
        if start - t > self.p.queue {
            return None;
        }
        self.busy_until = start + Duration::from_secs_f64(len as f64 * 8.0 / rate as f64);
        Some(self.busy_until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// 50 packets a second (20 ms Opus frames) of `len` bytes for `secs`.
    fn run(link: &mut Link, secs: u64, len: usize) -> Vec<(Duration, Fate)> {
        (0..secs * 50).map(|i| MS * (20 * i as u32)).map(|t| (t, link.send(t, len))).collect()
    }

    fn loss_rate(f: &[(Duration, Fate)]) -> f64 {
        f.iter().filter(|(_, x)| matches!(x, Fate::Lost(_))).count() as f64 / f.len() as f64
    }

    #[test]
    fn clean_is_base_delay_only() {
        let mut l = Link::new(Profile::named("clean").unwrap(), 1);
        for (t, f) in run(&mut l, 2, 100) {
            assert_eq!(f, Fate::Arrives(t + 10 * MS));
        }
    }

    #[test]
    fn random_loss_hits_its_rate() {
        let mut l = Link::new(Profile::named("loss5").unwrap(), 7);
        let r = loss_rate(&run(&mut l, 600, 100));
        assert!((0.045..0.055).contains(&r), "{r}");
    }

    #[test]
    fn bursty_loss_keeps_the_mean_and_makes_bursts() {
        let mut l = Link::new(Profile::named("bursty5").unwrap(), 3);
        let f = run(&mut l, 600, 100);
        let r = loss_rate(&f);
        assert!((0.04..0.06).contains(&r), "{r}");
        // Mean run of consecutive losses near 3.
        let (mut runs, mut lost, mut prev) = (0, 0, false);
        for (_, x) in &f {
            let now = matches!(x, Fate::Lost(Lost::Burst));
            if now {
                lost += 1;
                if !prev {
                    runs += 1;
                }
            }
            prev = now;
        }
        let mean = lost as f64 / runs as f64;
        assert!((2.5..3.5).contains(&mean), "{mean}");
    }

    #[test]
    fn jitter_keeps_order_unless_reordering_is_asked() {
        let mut l = Link::new(Profile::named("jitter60").unwrap(), 5);
        let f = run(&mut l, 20, 100);
        let arrivals: Vec<Duration> = f.iter().map(|(_, x)| if let Fate::Arrives(a) = x { *a } else { panic!() }).collect();
        assert!(arrivals.windows(2).all(|w| w[0] <= w[1]), "in order");
        assert!(f.iter().zip(&arrivals).all(|((t, _), a)| *a >= *t + 10 * MS));
        let spread = f.iter().zip(&arrivals).map(|((t, _), a)| *a - *t).max().unwrap();
        assert!(spread > 50 * MS && spread <= 70 * MS + 20 * MS, "{spread:?}");
        let mut r = Link::new(Profile { reorder: true, ..Profile::named("jitter60").unwrap() }, 5);
        let a: Vec<Duration> = run(&mut r, 20, 100).iter().map(|(_, x)| if let Fate::Arrives(a) = x { *a } else { panic!() }).collect();
        assert!(a.windows(2).any(|w| w[0] > w[1]), "some overtaking");
    }

    #[test]
    fn a_cap_serialises_and_tail_drops() {
        // 100 kbit/s, 1,000-byte packets every 20 ms = 400 kbit/s offered: the queue fills, then drops.
        let p = Profile { rate_bps: Some(100_000), queue: 200 * MS, ..Profile::default() };
        let mut l = Link::new(p, 1);
        assert_eq!(l.send(Duration::ZERO, 1000), Fate::Arrives(80 * MS), "8,000 bits at 100 kbit/s");
        assert_eq!(l.send(20 * MS, 1000), Fate::Arrives(160 * MS), "behind the first");
        let f = run(&mut l, 2, 1000);
        assert!(f.iter().any(|(_, x)| *x == Fate::Lost(Lost::Queue)));
        let delivered = f.iter().filter(|(_, x)| matches!(x, Fate::Arrives(_))).count();
        // About the rate's worth in 2 s (12.5 a second), plus the queue.
        assert!((22..=32).contains(&delivered), "{delivered}");
    }

    #[test]
    fn competing_traffic_takes_its_share() {
        // Our 80 kbit/s alone on 100 kbit/s: no loss; with 60 kbit/s competing: over capacity, drops.
        let alone = Profile { rate_bps: Some(100_000), ..Profile::default() };
        assert_eq!(loss_rate(&run(&mut Link::new(alone.clone(), 1), 10, 200)), 0.0);
        let shared = Profile { cross_bps: 60_000, ..alone };
        let r = loss_rate(&run(&mut Link::new(shared, 1), 10, 200));
        assert!(r > 0.2, "{r}");
        let p = Profile::named("cap500k").unwrap();
        assert_eq!(loss_rate(&run(&mut Link::new(p, 1), 10, 200)), 0.0, "a 80 kbit/s call fits 500k with 300k competing");
    }

    #[test]
    fn outages_lose_everything_in_their_window() {
        let mut l = Link::new(Profile::named("outage2s").unwrap(), 1);
        let f = run(&mut l, 14, 100);
        for (t, x) in f {
            let inside = t >= OUTAGE_AT && t < OUTAGE_AT + 2000 * MS;
            assert_eq!(x == Fate::Lost(Lost::Outage), inside, "at {t:?}");
        }
    }

    #[test]
    fn every_name_is_a_profile() {
        for n in Profile::NAMES {
            assert!(Profile::named(n).is_some(), "{n}");
        }
        assert!(Profile::named("nope").is_none());
    }
}
