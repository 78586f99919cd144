//! Compiles proto/stockpile/v1 with protox, so no system `protoc` is needed.

fn main() {
    let proto_root = "../../proto";
    let files = [
        "stockpile/v1/envelope.proto",
        "stockpile/v1/events.proto",
        "stockpile/v1/export.proto",
    ];
    println!("cargo:rerun-if-changed={proto_root}");
    let descriptors = protox::compile(files, [proto_root]).expect("proto/ must compile");
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)
        .expect("prost-build must generate code from proto/");
}
