//! The call machine carries the listener's report on its keepalives
//! (docs/design/quality.md §4.1, docs/CALLS.md §5): the shell hands it in,
//! the machine attaches it and measures nothing itself.

use pub_sub_audio::audio::feedback::Report;
use pub_sub_audio::call::{Call, Event, Input, Output, Timers, UserAction};

fn established_callee() -> Call {
    let (mut c, _) = Call::incoming("s1", "d1", false, Timers::default(), 0);
    let invite = Event::Invite { sid: "s1".into(), from: "alice".into(), to: "bob".into(), display: String::new() };
    c.handle(Input::Peer { device: None, event: invite }, 10);
    c.handle(Input::User(UserAction::Answer), 20);
    let out = c.handle(Input::Peer { device: None, event: Event::Connect { device: "d1".into() } }, 30);
    assert!(out.iter().any(|o| matches!(o, Output::Established { .. })), "{out:?}");
    c
}

fn keepalives(out: &[Output]) -> Vec<Option<Report>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { event: Event::Keepalive { rx } } => Some(*rx),
            _ => None,
        })
        .collect()
}

#[test]
fn keepalives_carry_the_report_handed_in() {
    let mut c = established_callee();
    let t = c.poll_timeout().expect("a keepalive is due");
    assert_eq!(keepalives(&c.handle_timeout(t)), vec![None], "no report yet: a plain keepalive");
    let rx = Report { n: 99, loss: 50, burst: 25, ..Report::default() };
    c.set_rx(Some(rx));
    let t = c.poll_timeout().expect("the next keepalive");
    assert_eq!(keepalives(&c.handle_timeout(t)), vec![Some(rx)]);
    c.set_rx(None);
    let t = c.poll_timeout().expect("the next keepalive");
    assert_eq!(keepalives(&c.handle_timeout(t)), vec![None]);
}
