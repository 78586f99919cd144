//! The `stockpile` command. Everything lives in the library (`stockpile_cli::run`) so
//! that tests drive the same code in-process.

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = stockpile_cli::run(
        args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::ExitCode::from(code)
}
