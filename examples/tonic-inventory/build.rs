//! Generates the `inventory` messages, server and client from `proto/inventory.proto`
//! (needs `protoc`: Debian's `protobuf-compiler`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::compile_protos("proto/inventory.proto")?;
    Ok(())
}
