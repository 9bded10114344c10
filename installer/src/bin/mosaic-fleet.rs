//! `mosaic-fleet`: parses arguments and calls the library.
fn main() -> std::process::ExitCode {
    mosaic_install::fleet_main()
}
