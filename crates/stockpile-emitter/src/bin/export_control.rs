//! `stockpile-export-control`: the export-control emitting service. Everything is in the library
//! (`stockpile_emitter::service::run`); this only picks the service.

fn main() -> std::process::ExitCode {
    stockpile_emitter::cli::main(stockpile_emitter::ServiceKind::ExportControl)
}
