//! include_dir cannot tell cargo which files it embeds on stable Rust, so an
//! edited template would otherwise leave a stale bundle in the binary.
fn main() {
    println!("cargo:rerun-if-changed=../templates");
}
