//! Client against server of the same mechanism, with random users and passwords (UTF-8
//! included): the right password succeeds and yields the user, a wrong one fails.
#![cfg(feature = "server")]

use std::sync::Arc;

use proptest::prelude::*;
use sasl_mechs::saslprep::{saslprep, StringKind};
use sasl_mechs::server::{server_mechanism, ServerMechanism, ServerStep};
use sasl_mechs::{
    client_mechanism, AnonymousServer, ClientOptions, Credentials, ExternalServer, Mechanism,
    MechanismName, Needs, NtlmVersion, SaslError, Secret,
};

/// Runs one exchange; Ok(true) on success, Ok(false) on the server's failure.
fn run(client: &mut dyn Mechanism, server: &mut dyn ServerMechanism) -> Result<bool, SaslError> {
    let first = client.initial_response()?;
    let mut step = server.step(first.as_ref().map(|r| &r[..]))?;
    for _ in 0..8 {
        match step {
            ServerStep::Challenge(c) => {
                let r = client.respond(&c)?;
                step = server.step(Some(&r))?;
            }
            ServerStep::Success(data) => {
                client.finish(data.as_deref())?;
                return Ok(true);
            }
            ServerStep::Failure => return Ok(false),
        }
    }
    panic!("exchange did not end");
}

fn exchange(
    mech: &str,
    user: &str,
    authzid: &str,
    client_pw: &str,
    stored_pw: &str,
) -> (bool, Option<(String, Option<String>)>) {
    exchange_with(
        mech,
        user,
        authzid,
        client_pw,
        stored_pw,
        &ClientOptions::default(),
    )
}

fn exchange_with(
    mech: &str,
    user: &str,
    authzid: &str,
    client_pw: &str,
    stored_pw: &str,
    options: &ClientOptions,
) -> (bool, Option<(String, Option<String>)>) {
    let mut creds = Credentials::new(user, client_pw).unwrap();
    if !authzid.is_empty() {
        creds = creds.with_authzid(authzid).unwrap();
    }
    let mut client = client_mechanism(mech, &creds, options).unwrap();
    // PLAIN and SCRAM servers look up the SASLprep'ed name, the others the name as sent.
    let (u, p) = (user.to_owned(), stored_pw.to_owned());
    let prepped = prepared(user, StringKind::Query);
    let lookup = Arc::new(move |name: &str| {
        (name == u || Some(name) == prepped.as_deref()).then(|| Secret::new(p.clone()))
    });
    let mut server = server_mechanism(mech, lookup).unwrap();
    let ok = run(client.as_mut(), server.as_mut()).unwrap();
    (
        ok,
        server
            .authenticated()
            .map(|a| (a.authcid.clone(), a.authzid.clone())),
    )
}

/// `s` through SASLprep, `None` when refused or empty.
fn prepared(s: &str, kind: StringKind) -> Option<String> {
    saslprep(s, kind)
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| p.into_owned())
}

/// Starts with a character SASLprep keeps, then anything but NUL.
const NAME: &str = "[a-zA-Z0-9\u{e9}\u{4e2d}][^\\x00]{0,15}";
/// SCRAM user names travel SASLprep'ed, and the server looks up the prepared name: keep
/// out the characters SASLprep maps (RFC 3454 B.1 and C.1.2) so the lookup table matches.
const PREPPED: &str = "[a-zA-Z0-9\u{e9}][^\\x00\u{ad}\u{34f}\u{1806}\u{180b}-\u{180d}\u{200b}-\u{200d}\u{2060}\u{fe00}-\u{fe0f}\u{feff}\u{a0}\u{1680}\u{2000}-\u{200a}\u{202f}\u{205f}\u{3000}]{0,15}";
const AUTHZID: &str = "([a-zA-Z0-9][^\\x00]{0,7})?";

proptest! {
    #[test]
    fn plain_login_cram_digest(user in NAME, authzid in AUTHZID, pw in NAME, other in NAME) {
        // PLAIN's server prepares user and password (RFC 4616 §2): it succeeds exactly when
        // SASLprep accepts both, and names the prepared user.
        let (ok, who) = exchange("PLAIN", &user, &authzid, &pw, &pw);
        let expect_z = (!authzid.is_empty()).then(|| authzid.clone());
        match (prepared(&user, StringKind::Query), prepared(&pw, StringKind::Stored)) {
            (Some(u), Some(_)) => {
                prop_assert!(ok);
                prop_assert_eq!(who, Some((u, expect_z.clone())));
            }
            _ => {
                prop_assert!(!ok);
                prop_assert_eq!(who, None);
            }
        }
        let (ok, who) = exchange("DIGEST-MD5", &user, &authzid, &pw, &pw);
        prop_assert!(ok);
        prop_assert_eq!(who, Some((user.clone(), (!authzid.is_empty()).then(|| authzid.clone()))));
        for mech in ["LOGIN", "CRAM-MD5"] {
            let (ok, who) = exchange(mech, &user, "", &pw, &pw);
            prop_assert!(ok, "{}", mech);
            prop_assert_eq!(who, Some((user.clone(), None)));
        }
        // Two passwords that prepare to the same string are the same password to PLAIN.
        if other != pw && prepared(&other, StringKind::Query) != prepared(&pw, StringKind::Query) {
            for mech in ["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5"] {
                let (ok, who) = exchange(mech, &user, "", &other, &pw);
                prop_assert!(!ok, "{}", mech);
                prop_assert_eq!(who, None);
            }
        }
    }
}

proptest! {
    // PBKDF2 with 4096 rounds per exchange: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn scram(user in PREPPED, authzid in proptest::option::of(PREPPED), pw in NAME, other in NAME) {
        // RFC 5802: names are query strings, the password a stored string. A credential
        // SASLprep refuses is refused by the client before anything is sent.
        let z = authzid.clone().unwrap_or_default();
        let (Some(u), Some(_)) = (prepared(&user, StringKind::Query), prepared(&pw, StringKind::Stored)) else {
            for mech in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
                let creds = Credentials::new(&user, pw.as_str()).unwrap();
                let refused = matches!(
                    client_mechanism(mech, &creds, &ClientOptions::default()),
                    Err(SaslError::InvalidCredentials { .. })
                );
                prop_assert!(refused, "{}", mech);
            }
            return Ok(());
        };
        if authzid.as_deref().is_some_and(|z| saslprep(z, StringKind::Query).is_err()) {
            let creds = Credentials::new(&user, pw.as_str()).unwrap().with_authzid(&z).unwrap();
            let refused = matches!(
                client_mechanism("SCRAM-SHA-256", &creds, &ClientOptions::default()),
                Err(SaslError::InvalidCredentials { field: "authorization id", .. })
            );
            prop_assert!(refused);
            return Ok(());
        }
        let z_prepped = authzid.as_deref().and_then(|z| prepared(z, StringKind::Query));
        for mech in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
            let (ok, who) = exchange(mech, &user, &z, &pw, &pw);
            prop_assert!(ok, "{}", mech);
            prop_assert_eq!(who, Some((u.clone(), z_prepped.clone())));
            if prepared(&other, StringKind::Stored).is_some_and(|o| Some(o) != prepared(&pw, StringKind::Stored)) {
                let (ok, _) = exchange(mech, &user, "", &other, &pw);
                prop_assert!(!ok, "{}", mech);
            }
        }
    }
}

/// NTLM user names: no `\\` or `@`, which the client reads as a domain separator.
const NTLM_USER: &str = "[a-zA-Z0-9\u{e9}\u{4e2d}][^\\x00\\\\@]{0,15}";

proptest! {
    #[test]
    fn ntlm_v1_and_v2(user in NTLM_USER, domain in "([A-Za-z\u{e9}][A-Za-z0-9.\u{e9}-]{0,10})?", pw in NAME, other in NAME) {
        for version in [NtlmVersion::V2, NtlmVersion::V1] {
            let mut options = ClientOptions::default();
            options.ntlm.version = version;
            options.ntlm.domain = Some(domain.clone());
            let (ok, who) = exchange_with("NTLM", &user, "", &pw, &pw, &options);
            prop_assert!(ok, "{:?}", version);
            prop_assert_eq!(who, Some((user.clone(), None)));
            if other != pw {
                let (ok, who) = exchange_with("NTLM", &user, "", &other, &pw, &options);
                prop_assert!(!ok, "{:?}", version);
                prop_assert_eq!(who, None);
            }
        }
    }
}

#[test]
fn ntlm_server_reports_the_domain() {
    let creds = Credentials::new("example.test\\tim", "pw").unwrap();
    let mut client = client_mechanism("NTLM", &creds, &ClientOptions::default()).unwrap();
    let lookup = Arc::new(|name: &str| (name == "tim").then(|| Secret::new("pw")));
    let mut server = server_mechanism("ntlm", lookup).unwrap();
    assert!(run(client.as_mut(), server.as_mut()).unwrap());
    let who = server.authenticated().unwrap();
    assert_eq!(who.authcid, "tim");
    // The client upper-cases the domain by default; the server reports it as sent.
    assert_eq!(who.realm.as_deref(), Some("EXAMPLE.TEST"));
}

#[test]
fn unknown_user_fails() {
    let password_mechanisms = MechanismName::ALL_KNOWN
        .into_iter()
        .filter(|m| m.needs() == Some(Needs::Password));
    for mech in password_mechanisms {
        let creds = Credentials::new("nobody", "pw").unwrap();
        let mut client = client_mechanism(mech, &creds, &ClientOptions::default()).unwrap();
        let mut server = server_mechanism(mech, Arc::new(|_: &str| None)).unwrap();
        assert!(!run(client.as_mut(), server.as_mut()).unwrap(), "{mech}");
        assert!(server.authenticated().is_none());
    }
}

/// Token users and tokens: what the OAuth clients accept (no control characters).
const TOKEN_USER: &str = "[a-zA-Z0-9\u{e9}\u{4e2d}][^\\x00-\\x1f\\x7f]{0,15}";
const TOKEN: &str = "[A-Za-z0-9._~+/=-]{1,64}";

fn token_exchange(
    mech: &str,
    user: &str,
    client_token: &str,
    stored: &str,
) -> (bool, Option<String>, Option<String>) {
    let creds = Credentials::with_token(user, client_token).unwrap();
    let mut client = client_mechanism(mech, &creds, &ClientOptions::default()).unwrap();
    let (u, t) = (user.to_owned(), stored.to_owned());
    let lookup = Arc::new(move |name: &str| (name == u).then(|| Secret::new(t.clone())));
    let mut server = server_mechanism(mech, lookup).unwrap();
    let ok = run(client.as_mut(), server.as_mut()).unwrap();
    (
        ok,
        server.authenticated().map(|a| a.authcid.clone()),
        client.failure_detail().map(|e| e.status.clone()),
    )
}

proptest! {
    #[test]
    fn oauthbearer_xoauth2(user in TOKEN_USER, token in TOKEN, other in TOKEN) {
        for (mech, status) in [("OAUTHBEARER", "invalid_token"), ("XOAUTH2", "401")] {
            let (ok, who, detail) = token_exchange(mech, &user, &token, &token);
            prop_assert!(ok, "{}", mech);
            prop_assert_eq!(who, Some(user.clone()));
            prop_assert_eq!(detail, None);
            if other != token {
                let (ok, who, detail) = token_exchange(mech, &user, &other, &token);
                prop_assert!(!ok, "{}", mech);
                prop_assert_eq!(who, None);
                prop_assert_eq!(detail.as_deref(), Some(status));
            }
        }
    }

    #[test]
    fn external_and_anonymous(identity in NAME, authzid in AUTHZID, trace in "[^\\x00]{0,255}") {
        let mut creds = Credentials::without_secret("").unwrap();
        if !authzid.is_empty() {
            creds = creds.with_authzid(&authzid).unwrap();
        }
        let mut client = client_mechanism("EXTERNAL", &creds, &ClientOptions::default()).unwrap();
        let mut server = ExternalServer::new(Some(identity.clone()));
        prop_assert!(run(client.as_mut(), &mut server).unwrap());
        let who = server.authenticated().unwrap();
        prop_assert_eq!(&who.authcid, &identity);
        prop_assert_eq!(who.authzid.clone(), (!authzid.is_empty()).then(|| authzid.clone()));
        // Through server_mechanism no channel identity is known: failure.
        let mut client = client_mechanism("EXTERNAL", &creds, &ClientOptions::default()).unwrap();
        let mut server = server_mechanism("EXTERNAL", Arc::new(|_: &str| None)).unwrap();
        prop_assert!(!run(client.as_mut(), server.as_mut()).unwrap());

        let creds = Credentials::without_secret(&trace).unwrap();
        let mut client = client_mechanism("ANONYMOUS", &creds, &ClientOptions::default()).unwrap();
        let mut server = AnonymousServer::new();
        prop_assert!(run(client.as_mut(), &mut server).unwrap());
        prop_assert_eq!(server.trace(), Some(trace.as_str()));
        prop_assert_eq!(&server.authenticated().unwrap().authcid, "anonymous");
    }
}

/// RFC 4013 §3's examples through PLAIN and SCRAM: equal after SASLprep is equal, and a
/// prohibited or bidi-breaking password never authenticates.
#[test]
fn saslprep_examples_through_plain_and_scram() {
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        // #1 and #5 both prepare to "IX"; #4 to "a".
        assert!(
            exchange(mech, "user", "", "I\u{00AD}X", "\u{2168}").0,
            "{mech}"
        );
        assert!(exchange(mech, "user", "", "\u{00AA}", "a").0, "{mech}");
        // #3: case preserved, so "USER" is not "user".
        assert!(!exchange(mech, "user", "", "USER", "user").0, "{mech}");
        // A user name that SASLprep maps is looked up in its prepared form.
        let (ok, who) = exchange(mech, "us\u{00AD}er", "", "pw", "pw");
        assert!(ok, "{mech}");
        assert_eq!(who.unwrap().0, "user");
    }
    // #6 and #7 stored on the server: PLAIN fails the exchange.
    for stored in ["\u{0007}", "\u{0627}\u{0031}"] {
        assert!(!exchange("PLAIN", "user", "", stored, stored).0);
        for mech in ["SCRAM-SHA-1", "SCRAM-SHA-256"] {
            // SCRAM's client refuses such a password before sending anything.
            let creds = Credentials::new("user", stored).unwrap();
            assert!(matches!(
                client_mechanism(mech, &creds, &ClientOptions::default()),
                Err(SaslError::InvalidCredentials {
                    field: "password",
                    ..
                })
            ));
        }
    }
}
