//! Links the kernel with its own linker script, as a static non-PIE image,
//! and embeds the initial file system image named by `NEOOS_INITFS` (a cpio
//! archive the host tool writes) when that variable is set.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-env-changed=NEOOS_INITFS");
    println!("cargo::rustc-check-cfg=cfg(neoos_embedded_initfs)");
    if let Ok(image) = std::env::var("NEOOS_INITFS") {
        println!("cargo:rerun-if-changed={image}");
        println!("cargo:rustc-cfg=neoos_embedded_initfs");
    }
    for arg in [
        &format!("-T{dir}/linker.ld"),
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
        "-Wl,-z,max-page-size=4096",
        "-Wl,--no-dynamic-linker",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
