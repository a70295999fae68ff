//! `--demo`: the built-in demo server on 127.0.0.1, one message through each of its
//! mechanisms, with the conversation and what the server received.

use smtp_demo_server::{
    DemoConfig, DemoServer, ReceivedMessage, Transfer, DEMO_PASSWORD, DEMO_USER, MECHANISMS,
    TOKEN_MECHANISMS,
};

use crate::cli::{self, Args, AuthChoice, Plan, TlsArg};
use crate::exit::{Failure, Kind};
use crate::send::{client_config, send, Trust};
use crate::transcript::Observe;

/// The sender used when `--from` is not given.
pub const DEMO_FROM: &str = "demo@example.test";
/// The recipient used when `--to` is not given.
pub const DEMO_TO: &str = "sink@example.test";

/// Runs the demo; the result is the first failure, if any (every mechanism is tried).
pub fn run(args: &Args) -> Result<(), Failure> {
    // Everything the user gave is checked before the server starts.
    let from = args.from.clone().unwrap_or_else(|| DEMO_FROM.to_owned());
    let to = if args.to.is_empty() {
        vec![DEMO_TO.to_owned()]
    } else {
        args.to.clone()
    };
    let (from, to) = cli::envelope(&from, &to)?;
    let helo = cli::helo(args)?;
    cli::body(args)?;
    crate::connection::refuse_with_demo(args)?;
    let extensions = crate::extensions::plan(args, to.len())?;
    let own_password = args.password_env.is_some() || args.password_file.is_some();
    let mut auth_args = Args {
        user: Some(args.user.clone().unwrap_or_else(|| DEMO_USER.to_owned())),
        ..args.clone()
    };
    if auth_args.auth.is_none() {
        auth_args.auth = Some("auto".to_owned());
    }
    let password = (!own_password).then(|| sasl_mechs::Secret::new(DEMO_PASSWORD));
    let Some(auth) = cli::auth_plan(&auth_args, password)? else {
        return Err(Failure::new(Kind::Other, "demo: no authentication plan"));
    };
    let mechanisms: Vec<String> = match &auth.choice {
        AuthChoice::Mechanism(m) => vec![m.clone()],
        AuthChoice::Auto if args.auth.is_some() => vec!["auto".to_owned()],
        AuthChoice::Auto => MECHANISMS
            .iter()
            .chain(TOKEN_MECHANISMS.iter())
            .map(|m| (*m).to_owned())
            .collect(),
    };

    let server = DemoServer::start(DemoConfig::new().port(args.demo_port)).map_err(|e| {
        Failure::new(
            Kind::Connection,
            format!(
                "demo server: cannot listen on 127.0.0.1:{}: {e} (try --demo-port 0)",
                args.demo_port
            ),
        )
    })?;
    let say = |text: String| {
        if !args.quiet {
            println!("{text}");
        }
    };
    say(format!(
        "demo server listening on {} (STARTTLS with a throwaway CA; AUTH {} {}); user {:?}, \
         password {:?} ({} take the password as the bearer token)",
        server.addr(),
        MECHANISMS.join(" "),
        TOKEN_MECHANISMS.join(" "),
        DEMO_USER,
        DEMO_PASSWORD,
        TOKEN_MECHANISMS.join(" and "),
    ));

    let mut first_failure = None;
    let mut failures = 0;
    for mechanism in &mechanisms {
        let mut auth = auth.clone();
        auth.choice = if mechanism == "auto" {
            AuthChoice::Auto
        } else {
            AuthChoice::Mechanism(mechanism.clone())
        };
        say(format!(
            "\n=== AUTH {mechanism} as {:?}, to {} ===",
            auth.user,
            server.addr()
        ));
        let mut plan = Plan {
            host: "127.0.0.1".to_owned(),
            port: Some(server.port()),
            tls: TlsArg::Starttls,
            submission: false,
            ca_file: None,
            tls_server_name: Some("localhost".to_owned()),
            auth: Some(auth),
            proxy: None,
            from: from.clone(),
            to: to.clone(),
            body: cli::body(args)?,
            bdat: args.bdat,
            helo: helo.clone(),
            timeout: std::time::Duration::from_secs(args.timeout.max(1)),
            pipelining: args.pipelining == cli::PipeliningArg::Auto,
            transcript: !args.quiet || args.transcript_time,
            quiet: args.quiet,
            load: None,
            observe: Observe::new(args),
            link: Default::default(),
            extensions: extensions.clone(),
        };
        let before = server.received().len();
        let config = client_config(&plan, Trust::Only(server.ca_der()))?;
        match send(&mut plan, config) {
            Ok(sent) => {
                say(format!(
                    "sent with {}: {}",
                    sent.mechanism.as_deref().unwrap_or("no AUTH"),
                    sent.reply
                ));
            }
            Err(failure) => {
                // With one mechanism, the closing line below says it once.
                if mechanisms.len() > 1 {
                    eprintln!("smtp-send: {failure}");
                }
                failures += 1;
                first_failure.get_or_insert(failure);
            }
        }
        let received = server.received();
        for message in received.iter().skip(before) {
            say(describe(message));
        }
    }
    server.stop();
    match first_failure {
        None => {
            say(format!(
                "\ndemo: {} message(s) sent and received; server stopped",
                mechanisms.len()
            ));
            Ok(())
        }
        Some(f) if mechanisms.len() == 1 => Err(Failure::new(f.kind, format!("demo: {}", f.line))),
        Some(f) => Err(Failure::new(
            f.kind,
            format!(
                "demo: {failures} of {} mechanism(s) failed; the first: {}",
                mechanisms.len(),
                f.line
            ),
        )),
    }
}

/// What the server received, for people.
pub fn describe(m: &ReceivedMessage) -> String {
    let mut out = format!(
        "server received, over {}, from user {} ({}), via {}:\n  MAIL FROM:<{}>{}\n",
        if m.tls { "TLS" } else { "clear text" },
        m.authenticated.as_deref().unwrap_or("(none)"),
        m.mechanism.as_deref().unwrap_or("no AUTH"),
        match m.transfer {
            Transfer::Data => "DATA",
            Transfer::Bdat => "BDAT",
        },
        m.from,
        m.mail_params
            .iter()
            .map(|p| format!(" {p}"))
            .collect::<String>(),
    );
    for rcpt in &m.to {
        out.push_str(&format!("  RCPT TO:<{rcpt}>\n"));
    }
    out.push_str(&format!("  message, {} bytes:\n", m.data.len()));
    for line in String::from_utf8_lossy(&m.data).lines() {
        out.push_str("  | ");
        out.push_str(line);
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}
