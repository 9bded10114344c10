//! `mosaic-install`: parses arguments and calls the library.
fn main() -> std::process::ExitCode {
    mosaic_install::install_main()
}
