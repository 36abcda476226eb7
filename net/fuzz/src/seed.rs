//! Writes one valid frame of every kind (behind a control byte) into
//! `corpus/frame_decode`, so fuzzing starts from frames that decode.

use synod_net::frame::encode;
use synod_net::samples::sample;
use synod_net::wire::Kind;

fn main() -> std::io::Result<()> {
    let directory = std::path::Path::new("corpus/frame_decode");
    std::fs::create_dir_all(directory)?;
    for (at, kind) in Kind::ALL.into_iter().enumerate() {
        for payload in [0usize, 40, 700] {
            let frame = encode(sample(kind, payload).as_ref(), 1 << 20).expect("a sample encodes");
            let mut seed = vec![0x30];
            seed.extend_from_slice(&frame);
            std::fs::write(directory.join(format!("seed-{at}-{payload}")), seed)?;
        }
    }
    Ok(())
}
