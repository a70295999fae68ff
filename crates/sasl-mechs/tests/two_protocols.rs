//! Runs the `two_protocols` example (the docs' SMTP/IMAP example) so it cannot rot.

#[path = "../examples/two_protocols.rs"]
mod example;

#[test]
fn example_runs() {
    example::main();
}
