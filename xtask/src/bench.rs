//! `cargo xtask bench`.

/// Runs `cargo xtask bench` with the arguments after the command name.
pub fn run(args: &[String]) -> Result<(), String> {
    Err(format!("not implemented yet (args: {args:?})"))
}
