//! Full client+server exchanges per mechanism, ours beside rsasl's (the Rust SASL crate
//! people use), in one run: PLAIN, and SCRAM-SHA-256 at 4096 iterations (the iteration
//! count both servers ask for).
//!
//! Both servers are given the same job: the user's plaintext password, so each SCRAM
//! exchange runs PBKDF2 twice (once on each side). rsasl's server can also start from
//! stored keys (one PBKDF2 per exchange); that row is printed too, for reference, but is
//! not the comparison.
//!
//! Output (read by `cargo xtask bench sasl`):
//!
//! ```text
//! bench name=<id> corpus=<mechanism> bytes=0 items=<exchanges> best_ns=<n> median_ns=<n> mb_s=0 items_s=<f>
//! ratio name=<id> value=<f> aim=<text> met=<yes|no>
//! ```

use std::hint::black_box;
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsasl::callback::{Context, Request, SessionCallback, SessionData};
use rsasl::mechanisms::scram::properties::ScramStoredPassword;
use rsasl::mechanisms::scram::tools::{derive_keys, hash_password};
use rsasl::mechname::Mechname;
use rsasl::prelude::{SASLClient, SASLConfig, SASLServer, SessionError, State};
use rsasl::property::{AuthId, Password};
use rsasl::validate::{Validate, Validation, ValidationError};
use sasl_mechs::server::{server_mechanism, PasswordLookup, ServerStep};
use sasl_mechs::{client_mechanism, ClientOptions, Credentials, Secret};
use sha2::{Digest, Sha256};

const SAMPLES: usize = 15;
const USER: &str = "user";
const PASSWORD: &str = "pencil";
const ITERATIONS: u32 = 4096;
const SALT: &[u8] = b"sixteen byte sal";

struct Measured {
    best: Duration,
    median: Duration,
}

fn measure(mut f: impl FnMut()) -> Measured {
    f();
    let mut times: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    Measured {
        best: times[0],
        median: times[SAMPLES / 2],
    }
}

/// Prints one line; exchanges per second of the best sample.
fn report(name: &str, mechanism: &str, items: usize, m: &Measured) -> f64 {
    let items_s = items as f64 / m.best.as_secs_f64();
    println!(
        "bench name={name} corpus={mechanism} bytes=0 items={items} best_ns={} median_ns={} mb_s=0 items_s={items_s:.0}",
        m.best.as_nanos(),
        m.median.as_nanos()
    );
    items_s
}

fn ratio(name: &str, value: f64) {
    // Ours / rsasl in exchanges per second: the aim is no slower (>= 1, with 5% noise).
    println!(
        "ratio name={name} value={value:.2} aim=>=0.95 met={}",
        if value >= 0.95 { "yes" } else { "no" }
    );
}

// ----- ours ---------------------------------------------------------------------------

/// Our server's password lookup, shared by every exchange as rsasl's server config is.
fn lookup() -> PasswordLookup {
    Arc::new(|u: &str| (u == USER).then(|| Secret::new(PASSWORD)))
}

fn ours(mechanism: &str, lookup: &PasswordLookup) {
    let creds = Credentials::new(USER, PASSWORD).unwrap();
    let mut client = client_mechanism(mechanism, &creds, &ClientOptions::default()).unwrap();
    let mut server = server_mechanism(mechanism, lookup.clone()).unwrap();
    let first = client.initial_response().unwrap();
    let mut step = server.step(first.as_ref().map(|r| &r[..])).unwrap();
    loop {
        match step {
            ServerStep::Challenge(c) => {
                let r = client.respond(&c).unwrap();
                step = server.step(Some(&r)).unwrap();
            }
            ServerStep::Success(data) => {
                client.finish(data.as_deref()).unwrap();
                break;
            }
            ServerStep::Failure => panic!("ours: {mechanism} failed"),
        }
    }
    black_box(server.authenticated());
}

// ----- rsasl --------------------------------------------------------------------------

struct Accepted;
impl Validation for Accepted {
    type Value = bool;
}

/// rsasl's server callback: the plaintext password (`stored_keys: None`: PBKDF2 on every
/// SCRAM exchange, like ours) or precomputed SCRAM keys.
struct Callback {
    stored_keys: Option<(Vec<u8>, Vec<u8>)>,
}

impl SessionCallback for Callback {
    fn callback(
        &self,
        _: &SessionData,
        context: &Context<'_>,
        request: &mut Request<'_>,
    ) -> Result<(), SessionError> {
        if context.get_ref::<AuthId>() != Some(USER) {
            return Ok(());
        }
        let (stored, server) = match &self.stored_keys {
            Some(k) => k.clone(),
            None => scram_keys(),
        };
        request.satisfy::<ScramStoredPassword<'_>>(&ScramStoredPassword::new(
            ITERATIONS, SALT, &stored, &server,
        ))?;
        Ok(())
    }

    fn validate(
        &self,
        session_data: &SessionData,
        context: &Context<'_>,
        validate: &mut Validate<'_>,
    ) -> Result<(), ValidationError> {
        let ok = if session_data.mechanism().mechanism == "PLAIN" {
            context.get_ref::<AuthId>() == Some(USER)
                && context.get_ref::<Password>() == Some(PASSWORD.as_bytes())
        } else {
            context.get_ref::<AuthId>() == Some(USER)
        };
        validate.with::<Accepted, _>(|| Ok(ok))?;
        Ok(())
    }
}

/// StoredKey and ServerKey from the password: one PBKDF2.
fn scram_keys() -> (Vec<u8>, Vec<u8>) {
    let mut salted = sha2::digest::Output::<Sha256>::default();
    hash_password::<Sha256>(PASSWORD.as_bytes(), ITERATIONS, SALT, &mut salted);
    let (client_key, server_key) = derive_keys::<Sha256>(salted.as_slice());
    (Sha256::digest(client_key).to_vec(), server_key.to_vec())
}

fn rsasl(mechanism: &str, server_config: &Arc<SASLConfig>) {
    let mechname = Mechname::parse(mechanism.as_bytes()).unwrap();
    let client_config =
        SASLConfig::with_credentials(None, USER.to_owned(), PASSWORD.to_owned()).unwrap();
    let mut client = SASLClient::new(client_config)
        .start_suggested(&[mechname])
        .unwrap();
    let mut server = SASLServer::<Accepted>::new(server_config.clone())
        .start_suggested(mechname)
        .unwrap();
    let mut to_server = Cursor::new(Vec::new());
    client.step(None, &mut to_server).unwrap();
    loop {
        let mut to_client = Cursor::new(Vec::new());
        let state = server
            .step(Some(to_server.get_ref()), &mut to_client)
            .unwrap();
        if let State::Finished(_) = state {
            if mechanism != "PLAIN" {
                // SCRAM's server-final: the client checks the server signature.
                let mut none = Cursor::new(Vec::new());
                client.step(Some(to_client.get_ref()), &mut none).unwrap();
            }
            break;
        }
        to_server = Cursor::new(Vec::new());
        client
            .step(Some(to_client.get_ref()), &mut to_server)
            .unwrap();
    }
    assert_eq!(server.validation(), Some(true), "rsasl: {mechanism} failed");
}

fn server_config(stored_keys: Option<(Vec<u8>, Vec<u8>)>) -> Arc<SASLConfig> {
    SASLConfig::builder()
        .with_defaults()
        .with_callback(Callback { stored_keys })
        .unwrap()
}

fn main() {
    let plaintext = server_config(None);
    let lookup = lookup();
    let stored = server_config(Some(scram_keys()));

    let n = 20_000;
    let a = report(
        "ours",
        "PLAIN",
        n,
        &measure(|| (0..n).for_each(|_| ours("PLAIN", &lookup))),
    );
    let b = report(
        "rsasl",
        "PLAIN",
        n,
        &measure(|| (0..n).for_each(|_| rsasl("PLAIN", &plaintext))),
    );
    ratio("plain_ours_vs_rsasl", a / b);

    let n = 20;
    let a = report(
        "ours",
        "SCRAM-SHA-256",
        n,
        &measure(|| (0..n).for_each(|_| ours("SCRAM-SHA-256", &lookup))),
    );
    let b = report(
        "rsasl",
        "SCRAM-SHA-256",
        n,
        &measure(|| (0..n).for_each(|_| rsasl("SCRAM-SHA-256", &plaintext))),
    );
    report(
        "rsasl_stored_keys",
        "SCRAM-SHA-256",
        n,
        &measure(|| (0..n).for_each(|_| rsasl("SCRAM-SHA-256", &stored))),
    );
    ratio("scram_sha_256_ours_vs_rsasl", a / b);
}
