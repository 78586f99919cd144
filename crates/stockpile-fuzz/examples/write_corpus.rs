//! Writes the seed inputs into a cargo fuzz corpus: `<dir>/<target>/<seed name>`
//! (`make fuzz` runs it into `fuzz/corpus`, which is git-ignored).
//!
//! `cargo run -p stockpile-fuzz --example write_corpus -- fuzz/corpus`

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    let dir = std::path::Path::new(&dir);
    let seeds = stockpile_fuzz::seeds::seeds();
    for seed in &seeds {
        let target_dir = dir.join(seed.target);
        std::fs::create_dir_all(&target_dir).expect("creates the corpus directory");
        std::fs::write(target_dir.join(&seed.name), &seed.bytes).expect("writes a seed");
    }
    println!("{} seeds written under {}", seeds.len(), dir.display());
}
