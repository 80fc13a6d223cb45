//! The soak's calls: a pool of registered phones (one user each), calls
//! placed between idle ones through pub-sub-audio's Phone API, each with a
//! plan both sides follow — who hangs up and when, DTMF digits one side
//! keys, a hold and unhold by one side (docs/CALLS.md §4, §5) — and the
//! checks of what the other side saw: the hangup arrived as the peer's
//! (not as lost peer), every digit and both hold events were reported. And
//! registration churn: an idle phone leaves (`Phone::close`) and registers
//! again as a new session.

use crate::phones::{await_connect, live_port};
use pub_sub_audio::call::{Address, EndReason, UserAction};
use pub_sub_audio::phone::media::{AudioMapping, MediaConfig};
use pub_sub_audio::phone::{Incoming, Phone, PhoneConfig, Progress};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a placed call has to be heard (INVITE → the caller plays the
/// callee's first frame): the storm's bound, far above its 61 ms p50.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// How long a side waits past the plan's hangup for the peer's hangup: the
/// lost-peer timer (5 s, CALLS.md §4 "Ending") plus slack; a call still up
/// then is stuck.
const END_GRACE: Duration = Duration::from_secs(10);

/// splitmix64: deterministic per seed, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Caller,
    Callee,
}

/// What both sides of one call do, in time from their own `established`.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The call lasts this long, then `hangup` hangs up.
    pub hold: Duration,
    pub hangup: Side,
    /// Digits keyed by one side at a quarter of the call.
    pub dtmf: Option<(Side, Vec<char>)>,
    /// One side holds at 40 % of the call and unholds at 60 %.
    pub hold_by: Option<Side>,
}

impl Plan {
    /// A random plan around `mean` (uniform 0.5–1.5 × mean, at least 5 s so
    /// the last event leaves 2 s before the hangup): half the calls key DTMF,
    /// a third go on hold, either side hangs up.
    pub fn draw(rng: &mut Rng, mean: Duration) -> Plan {
        let side = |rng: &mut Rng| if rng.below(2) == 0 { Side::Caller } else { Side::Callee };
        let hold = mean.mul_f64(0.5 + rng.unit()).max(Duration::from_secs(5));
        let hangup = side(rng);
        let dtmf = (rng.below(2) == 0).then(|| {
            let keys = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '0', '*', '#'];
            (side(rng), (0..2).map(|_| keys[rng.below(keys.len())]).collect())
        });
        let hold_by = (rng.below(3) == 0).then(|| side(rng));
        Plan { hold, hangup, dtmf, hold_by }
    }
}

/// What one side saw of a call.
#[derive(Debug, Default)]
pub struct SideLog {
    pub established: bool,
    pub ended: Option<EndReason>,
    pub dtmf_seen: Vec<char>,
    /// PeerHold on and off events reported.
    pub holds_seen: u32,
}

/// Counts over the whole soak.
#[derive(Debug, Default)]
pub struct Tally {
    pub placed: u64,
    pub connected: u64,
    /// Calls that should have connected and did not, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Calls that connected and then went wrong, by what went wrong.
    pub troubled: BTreeMap<String, u64>,
    /// Connected calls whose both sides ended as planned.
    pub ended_clean: u64,
    pub dtmf_sent: u64,
    pub dtmf_seen: u64,
    pub holds_sent: u64,
    pub holds_seen: u64,
    /// INVITE → first audio at the caller, ms, per connected call.
    pub setup_ms: Vec<f64>,
    pub rereg_ok: u64,
    pub rereg_failed: BTreeMap<String, u64>,
    /// Rings with no plan (a call nobody placed to this phone).
    pub unexpected_rings: u64,
    /// Calls to the PBX (soak/pbx.rs): placed, connected, failed to, ended as planned.
    pub pbx_placed: u64,
    pub pbx_connected: u64,
    pub pbx_failed: BTreeMap<String, u64>,
    pub pbx_ended_clean: u64,
}

/// One phone of the pool.
pub struct Slot {
    pub cfg: PhoneConfig,
    /// None while it re-registers (or after it failed to).
    pub phone: Option<Phone>,
    /// Picked for a call or for churn: not to be picked again.
    pub reserved: bool,
}

pub struct Ctx {
    pub pool: Mutex<Vec<Slot>>,
    /// Callee user → the plan of the call placed to it, and where its side's
    /// log goes.
    plans: Mutex<HashMap<String, (Plan, oneshot::Sender<SideLog>)>>,
    pub tally: Mutex<Tally>,
    /// Calls placed and not yet finished (both sides checked).
    pub live: AtomicUsize,
    /// Calls to the PBX placed and not yet finished.
    pub pbx_live: AtomicUsize,
    pub mapping: AudioMapping,
}

impl Ctx {
    pub fn new(cfgs: Vec<PhoneConfig>, mapping: AudioMapping) -> Arc<Ctx> {
        Arc::new(Ctx {
            pool: Mutex::new(cfgs.into_iter().map(|cfg| Slot { cfg, phone: None, reserved: true }).collect()),
            plans: Mutex::default(),
            tally: Mutex::default(),
            live: AtomicUsize::new(0),
            pbx_live: AtomicUsize::new(0),
            mapping,
        })
    }

    pub fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn pool(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn registered(&self) -> usize {
        self.pool().iter().filter(|s| s.phone.is_some()).count()
    }

    /// Puts a freshly registered phone into slot `i` and starts taking its
    /// calls.
    pub fn install(self: &Arc<Self>, i: usize, phone: Phone, rings: mpsc::UnboundedReceiver<Incoming>) {
        let mut pool = self.pool();
        pool[i].phone = Some(phone.clone());
        pool[i].reserved = false;
        tokio::spawn(take_calls(self.clone(), phone, rings));
    }

    /// Reserves `n` distinct idle phones at random.
    pub fn pick(&self, rng: &mut Rng, n: usize) -> Option<Vec<(usize, Phone)>> {
        let mut pool = self.pool();
        let mut idle: Vec<usize> =
            (0..pool.len()).filter(|&i| !pool[i].reserved && pool[i].phone.as_ref().is_some_and(|p| p.is_idle())).collect();
        if idle.len() < n {
            return None;
        }
        let mut out = Vec::new();
        for _ in 0..n {
            let i = idle.swap_remove(rng.below(idle.len()));
            pool[i].reserved = true;
            out.push((i, pool[i].phone.clone()?));
        }
        Some(out)
    }

    pub(super) fn release(&self, slots: &[usize]) {
        let mut pool = self.pool();
        for &i in slots {
            pool[i].reserved = false;
        }
    }
}

/// Takes every call ringing `phone` for as long as its session lasts.
async fn take_calls(ctx: Arc<Ctx>, phone: Phone, mut rings: mpsc::UnboundedReceiver<Incoming>) {
    while let Some(inc) = rings.recv().await {
        tokio::spawn(take_one(ctx.clone(), phone.clone(), inc));
    }
}

/// The callee's side of one call: answers on ringing, follows the plan.
async fn take_one(ctx: Arc<Ctx>, phone: Phone, inc: Incoming) {
    let planned = ctx.plans.lock().unwrap_or_else(|e| e.into_inner()).remove(&phone.cfg.user);
    let (act_tx, act_rx) = mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = mpsc::unbounded_channel::<Progress>();
    let (live, mut heard) = live_port();
    tokio::spawn(async move { while heard.recv().await.is_some() {} });
    let media = MediaConfig { live: Some(live), mapping: ctx.mapping, ..Default::default() };
    let Some((plan, log_tx)) = planned else {
        ctx.tally().unexpected_rings += 1;
        let _ = act_tx.send(UserAction::Decline);
        phone.take(&inc, media, act_rx, rep_tx).await;
        return;
    };
    let call = tokio::spawn(async move { phone.take(&inc, media, act_rx, rep_tx).await });
    let mut log = SideLog::default();
    let within = tokio::time::Instant::now() + CONNECT_WITHIN;
    while !log.established && log.ended.is_none() {
        match tokio::time::timeout_at(within, rep_rx.recv()).await {
            Ok(Some(Progress::Ringing { on: true })) => {
                let _ = act_tx.send(UserAction::Answer);
            }
            Ok(Some(Progress::Established { .. })) => log.established = true,
            Ok(Some(Progress::Ended(r))) => log.ended = Some(r),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    if log.established {
        follow(Side::Callee, &plan, &act_tx, &mut rep_rx, &mut log).await;
    } else {
        let _ = act_tx.send(UserAction::Hangup);
    }
    drop(act_tx);
    let _ = tokio::time::timeout(END_GRACE, call).await;
    let _ = log_tx.send(log);
}

/// One side's part of an established call: its actions at their times, and
/// what it hears of the peer's, until the call ends.
pub(super) async fn follow(
    me: Side,
    plan: &Plan,
    act: &mpsc::UnboundedSender<UserAction>,
    rep: &mut mpsc::UnboundedReceiver<Progress>,
    log: &mut SideLog,
) {
    let t0 = tokio::time::Instant::now();
    let at = |f: f64| t0 + plan.hold.mul_f64(f);
    let mut todo: Vec<(tokio::time::Instant, UserAction)> = Vec::new();
    if let Some((side, digits)) = &plan.dtmf {
        if *side == me {
            todo.extend(digits.iter().map(|&digit| (at(0.25), UserAction::Dtmf { digit })));
        }
    }
    if plan.hold_by == Some(me) {
        todo.push((at(0.4), UserAction::Hold));
        todo.push((at(0.6), UserAction::Unhold));
    }
    if plan.hangup == me {
        todo.push((at(1.0), UserAction::Hangup));
    }
    todo.reverse();
    let give_up = at(1.0) + END_GRACE;
    loop {
        let next = todo.last().map(|t| t.0).unwrap_or(give_up);
        tokio::select! {
            p = rep.recv() => match p {
                Some(Progress::Dtmf { digit }) => log.dtmf_seen.push(digit),
                Some(Progress::PeerHold { .. }) => log.holds_seen += 1,
                Some(Progress::Ended(r)) => { log.ended = Some(r); return; }
                Some(_) => {}
                None => return,
            },
            _ = tokio::time::sleep_until(next) => match todo.pop() {
                Some((_, a)) => { let _ = act.send(a); }
                // The peer's hangup never came: end it, and the log shows
                // no end reason for this side.
                None => { let _ = act.send(UserAction::Hangup); return; }
            },
        }
    }
}

/// Places one call from `caller` to `callee` (both reserved in the pool),
/// follows it to the end with the callee's side, tallies what happened and
/// releases both phones.
pub async fn place(ctx: Arc<Ctx>, (ci, caller): (usize, Phone), (ei, callee_user): (usize, String), plan: Plan) {
    ctx.live.fetch_add(1, Ordering::Relaxed);
    ctx.tally().placed += 1;
    let (log_tx, log_rx) = oneshot::channel();
    ctx.plans.lock().unwrap_or_else(|e| e.into_inner()).insert(callee_user.clone(), (plan.clone(), log_tx));
    let (act_tx, act_rx) = mpsc::unbounded_channel();
    let (rep_tx, mut rep_rx) = mpsc::unbounded_channel::<Progress>();
    let (live, mut heard) = live_port();
    let media = MediaConfig { live: Some(live), mapping: ctx.mapping, ..Default::default() };
    let t0 = Instant::now();
    let call = match Address::parse(&callee_user) {
        Ok(to) => tokio::spawn(async move { caller.call(&to, media, act_rx, rep_tx).await }),
        Err(e) => {
            *ctx.tally().failed.entry(format!("bad address: {e}")).or_default() += 1;
            finish(&ctx, &[ci, ei], &callee_user);
            return;
        }
    };
    let c = await_connect(&mut rep_rx, &mut heard, t0, CONNECT_WITHIN).await;
    tokio::spawn(async move { while heard.recv().await.is_some() {} });
    let mut mine = SideLog { established: c.established.is_some(), ended: c.ended.clone(), ..Default::default() };
    if let Some(why) = c.failure(CONNECT_WITHIN) {
        *ctx.tally().failed.entry(why).or_default() += 1;
        let _ = act_tx.send(UserAction::Hangup);
        let _ = tokio::time::timeout(END_GRACE, call).await;
        // The callee may still be in it: wait for its side before the
        // phones are picked again.
        let _ = tokio::time::timeout(END_GRACE, log_rx).await;
        finish(&ctx, &[ci, ei], &callee_user);
        return;
    }
    {
        let mut t = ctx.tally();
        t.connected += 1;
        t.setup_ms.extend(c.first_audio);
    }
    follow(Side::Caller, &plan, &act_tx, &mut rep_rx, &mut mine).await;
    drop(act_tx);
    let _ = tokio::time::timeout(END_GRACE, call).await;
    let theirs = tokio::time::timeout(END_GRACE * 2, log_rx).await.ok().and_then(|r| r.ok());
    let problems = check(&plan, &mine, theirs.as_ref());
    let mut t = ctx.tally();
    if let Some((side, digits)) = &plan.dtmf {
        t.dtmf_sent += digits.len() as u64;
        let seen = if *side == Side::Caller { theirs.as_ref().map(|l| l.dtmf_seen.len()) } else { Some(mine.dtmf_seen.len()) };
        t.dtmf_seen += seen.unwrap_or(0) as u64;
    }
    if let Some(side) = plan.hold_by {
        t.holds_sent += 2;
        let seen = if side == Side::Caller { theirs.as_ref().map(|l| l.holds_seen) } else { Some(mine.holds_seen) };
        t.holds_seen += seen.unwrap_or(0) as u64;
    }
    if problems.is_empty() {
        t.ended_clean += 1;
    }
    for p in problems {
        *t.troubled.entry(p).or_default() += 1;
    }
    drop(t);
    finish(&ctx, &[ci, ei], &callee_user);
}

fn finish(ctx: &Ctx, slots: &[usize], callee_user: &str) {
    ctx.plans.lock().unwrap_or_else(|e| e.into_inner()).remove(callee_user);
    ctx.release(slots);
    ctx.live.fetch_sub(1, Ordering::Relaxed);
}

/// What went wrong in a connected call, judged from both sides' logs
/// against the plan. Pure.
pub fn check(plan: &Plan, caller: &SideLog, callee: Option<&SideLog>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(callee) = callee else {
        return vec!["the callee's side never finished".into()];
    };
    if !callee.established {
        out.push("the callee never saw the call established".into());
    }
    let describe = |r: &Option<EndReason>| r.as_ref().map(pub_sub_audio::phone::driver::describe).unwrap_or_else(|| "still up".into());
    for (side, log) in [(Side::Caller, caller), (Side::Callee, callee)] {
        let want = EndReason::Hangup { by_peer: plan.hangup != side };
        if log.established && log.ended.as_ref() != Some(&want) {
            let who = if side == Side::Caller { "caller" } else { "callee" };
            out.push(format!("{who} ended {} instead of {}", describe(&log.ended), pub_sub_audio::phone::driver::describe(&want)));
        }
    }
    if let Some((side, digits)) = &plan.dtmf {
        let heard = if *side == Side::Caller { &callee.dtmf_seen } else { &caller.dtmf_seen };
        if heard != digits {
            out.push(format!("DTMF: {} keyed, {} reported to the peer", digits.len(), heard.len()));
        }
    }
    if let Some(side) = plan.hold_by {
        let seen = if side == Side::Caller { callee.holds_seen } else { caller.holds_seen };
        if seen != 2 {
            out.push(format!("hold/unhold: 2 sent, {seen} reported to the peer"));
        }
    }
    out
}

/// Registration churn: phone `i` (idle, reserved by the caller) leaves the
/// relay and registers again as a new session after a pause.
pub async fn reregister(ctx: Arc<Ctx>, i: usize, pause: Duration) {
    let (old, cfg) = {
        let mut pool = ctx.pool();
        (pool[i].phone.take(), pool[i].cfg.clone())
    };
    if let Some(p) = old {
        p.close().await;
    }
    tokio::time::sleep(pause).await;
    for attempt in 0..5 {
        match pub_sub_audio::phone::Phone::register(cfg.clone()).await {
            Ok((phone, rings)) => {
                ctx.tally().rereg_ok += 1;
                ctx.install(i, phone, rings);
                return;
            }
            Err(e) => {
                *ctx.tally().rereg_failed.entry(e.to_string()).or_default() += 1;
                tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
            }
        }
    }
    // Left out of the pool (reserved, no phone): the report counts it.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            hold: Duration::from_secs(10),
            hangup: Side::Callee,
            dtmf: Some((Side::Caller, vec!['1', '#'])),
            hold_by: Some(Side::Callee),
        }
    }

    fn ended(by_peer: bool) -> Option<EndReason> {
        Some(EndReason::Hangup { by_peer })
    }

    #[test]
    fn a_call_as_planned_has_no_problem() {
        let caller = SideLog { established: true, ended: ended(true), dtmf_seen: vec![], holds_seen: 2 };
        let callee = SideLog { established: true, ended: ended(false), dtmf_seen: vec!['1', '#'], holds_seen: 0 };
        assert!(check(&plan(), &caller, Some(&callee)).is_empty());
    }

    #[test]
    fn lost_peer_lost_digits_and_a_missing_unhold_are_problems() {
        let caller = SideLog { established: true, ended: Some(EndReason::LostPeer), dtmf_seen: vec![], holds_seen: 1 };
        let callee = SideLog { established: true, ended: ended(false), dtmf_seen: vec!['1'], holds_seen: 0 };
        let p = check(&plan(), &caller, Some(&callee));
        assert_eq!(
            p,
            [
                "caller ended lost peer instead of hangup by peer",
                "DTMF: 2 keyed, 1 reported to the peer",
                "hold/unhold: 2 sent, 1 reported to the peer"
            ]
        );
        assert_eq!(check(&plan(), &caller, None), ["the callee's side never finished"]);
    }

    #[test]
    fn plans_stay_within_their_bounds() {
        let mut rng = Rng(7);
        for _ in 0..1000 {
            let p = Plan::draw(&mut rng, Duration::from_secs(20));
            assert!(p.hold >= Duration::from_secs(10) && p.hold <= Duration::from_secs(30), "{p:?}");
            assert!(p.dtmf.as_ref().is_none_or(|d| d.1.len() == 2));
        }
        let short = Plan::draw(&mut Rng(1), Duration::from_secs(1));
        assert_eq!(short.hold, Duration::from_secs(5));
    }
}
