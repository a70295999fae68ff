//! Postfix's XCLIENT and XFORWARD against scripted servers, on both drivers: the new
//! greeting and the EHLO after XCLIENT, and every refusal made before anything is sent.

use std::time::Duration;

use smtp_client::{ClientConfig, Error, Misuse, Timeouts, TlsMode};
use smtp_proto::{ClientProto, Command, Domain, Source, Xclient, XclientAttr, Xforward};
use smtp_testserver::scripted::{Record, Script, ScriptedServer};

use test_support::client::Driver;
use test_support::for_both_drivers;

for_both_drivers!(
    xclient_gets_a_new_greeting_then_ehlo_again,
    xclient_not_offered_is_refused_before_sending,
    an_attribute_not_offered_is_refused_before_sending,
    a_refused_xclient_leaves_the_session_as_it_was,
    xforward_is_answered_with_250,
    xforward_not_offered_is_refused_before_sending,
    xclient_through_command_is_refused,
);

const XCLIENT: &str = "XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT";
const XFORWARD: &str = "XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT";

fn config(server: &ScriptedServer) -> ClientConfig {
    ClientConfig::new("127.0.0.1")
        .port(server.port())
        .tls_mode(TlsMode::None)
        .hello(Domain::new("client.test").unwrap())
        .timeouts(Timeouts::uniform(Duration::from_secs(5)))
}

fn finish_ok(server: ScriptedServer) -> Record {
    let record = server.finish();
    assert!(record.result.is_ok(), "script failed: {:?}", record.result);
    record
}

fn forwarded() -> Xclient {
    Xclient::new()
        .name(&Domain::new("mail.forwarded.example").unwrap())
        .addr("192.0.2.7".parse().unwrap())
        .port(4711)
        .proto(ClientProto::Esmtp)
        .helo("helo.forwarded.example")
        .unwrap()
        .login("jörg")
        .unwrap()
        .unavailable(XclientAttr::ReverseName)
}

fn xclient_gets_a_new_greeting_then_ehlo_again<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING", XCLIENT])
            .expect(
                "XCLIENT NAME=mail.forwarded.example ADDR=192.0.2.7 PORT=4711 PROTO=ESMTP \
                 HELO=helo.forwarded.example LOGIN=j+C3+B6rg REVERSE_NAME=[UNAVAILABLE]",
            )
            .reply("220 mx.test ESMTP again")
            .expect("EHLO client.test")
            .reply("250-mx.test\n250 PIPELINING")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    assert!(client.supports("XCLIENT"));
    let ehlo = client.xclient(&forwarded()).unwrap();
    assert_eq!(ehlo.code().get(), 250);
    // The server started over: its new greeting, and what its new EHLO says.
    assert!(client.banner().unwrap().text().contains("again"));
    assert!(!client.supports("XCLIENT"));
    assert!(client.supports("PIPELINING"));
    client.quit().unwrap();
    finish_ok(server);
}

fn xclient_not_offered_is_refused_before_sending<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["PIPELINING", XFORWARD])
            .expect("NOOP")
            .reply("250 ok")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let err = client.xclient(&forwarded()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ExtensionMissing {
                extension: "XCLIENT",
                ..
            }
        ),
        "{err:?}"
    );
    client.noop().unwrap();
    client.quit().unwrap();
    finish_ok(server);
}

fn an_attribute_not_offered_is_refused_before_sending<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&["XCLIENT NAME ADDR"])
            .expect("NOOP")
            .reply("250 ok")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let err = client.xclient(&forwarded()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::AttributeNotOffered {
                extension: "XCLIENT",
                attribute: "PORT"
            }
        ),
        "{err:?}"
    );
    client.noop().unwrap();
    client.quit().unwrap();
    finish_ok(server);
}

fn a_refused_xclient_leaves_the_session_as_it_was<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[XCLIENT])
            .expect("XCLIENT ADDR=IPV6:2001:db8::7")
            .reply("550 5.7.0 Error: insufficient authorization")
            .expect("NOOP")
            .reply("250 ok")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let attrs = Xclient::new().addr("2001:db8::7".parse().unwrap());
    let err = client.xclient(&attrs).unwrap_err();
    assert!(
        matches!(&err, Error::Refused { command, reply }
            if command == "XCLIENT ADDR=IPV6:2001:db8::7" && reply.code().get() == 550),
        "{err:?}"
    );
    assert!(client.supports("XCLIENT"));
    client.noop().unwrap();
    client.quit().unwrap();
    finish_ok(server);
}

fn xforward_is_answered_with_250<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[XFORWARD])
            .expect("XFORWARD NAME=spike.porcupine.org ADDR=168.100.189.2 PROTO=ESMTP")
            .reply("250 2.0.0 Ok")
            .expect("XFORWARD SOURCE=REMOTE IDENT=4QbF0C1Z0nz9t")
            .reply("250 2.0.0 Ok")
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    // Postfix XFORWARD_README's example.
    let attrs = Xforward::new()
        .name(&Domain::new("spike.porcupine.org").unwrap())
        .addr("168.100.189.2".parse().unwrap())
        .proto(ClientProto::Esmtp);
    client.xforward(&attrs).unwrap();
    let attrs = Xforward::new()
        .source(Source::Remote)
        .ident("4QbF0C1Z0nz9t")
        .unwrap();
    client.xforward(&attrs).unwrap();
    client.quit().unwrap();
    finish_ok(server);
}

fn xforward_not_offered_is_refused_before_sending<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[XCLIENT])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let attrs = Xforward::new().port(25);
    let err = client.xforward(&attrs).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ExtensionMissing {
                extension: "XFORWARD",
                ..
            }
        ),
        "{err:?}"
    );
    client.quit().unwrap();
    finish_ok(server);
}

fn xclient_through_command_is_refused<C: Driver>() {
    let server = ScriptedServer::start(
        Script::new()
            .greet_ehlo(&[XCLIENT])
            .expect("QUIT")
            .reply("221 bye"),
    )
    .unwrap();
    let mut client = C::connect(config(&server)).unwrap();
    let attrs = forwarded();
    let err = client.command(&Command::Xclient(&attrs)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Misuse(Misuse::UseDedicatedMethod {
                verb: "XCLIENT",
                method: "xclient"
            })
        ),
        "{err:?}"
    );
    client.quit().unwrap();
    finish_ok(server);
}
