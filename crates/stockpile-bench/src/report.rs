//! Figures and targets: every measurement is printed as it is taken, kept with its
//! target, and written to a JSON results file at the end, so `docs/performance.md` can
//! quote one run. Nothing here asserts: a missed target is printed as missed.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

/// One measured quantity.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable key, e.g. `ingest.events_per_s`.
    pub key: String,
    /// What it is, in words.
    pub label: String,
    pub value: f64,
    pub unit: String,
}

/// How a target compares a figure.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    AtLeast,
    Below,
}

/// A target and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub label: String,
    pub value: f64,
    pub compare: Compare,
    pub target: f64,
    pub unit: String,
    pub met: bool,
}

/// Everything one `stockpile-bench` run measured.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub machine: Vec<(String, String)>,
    pub figures: Vec<Figure>,
    pub targets: Vec<TargetCheck>,
    /// Things a reader must know to read the figures (durability setting, sizes, …).
    pub notes: Vec<String>,
}

impl Report {
    /// Records and prints a figure; returns its value for ratios.
    pub fn figure(&mut self, key: &str, label: &str, value: f64, unit: &str) -> f64 {
        println!("  {label:<64} {} {unit}", format_value(value));
        self.figures.push(Figure {
            key: key.to_string(),
            label: label.to_string(),
            value,
            unit: unit.to_string(),
        });
        value
    }

    /// Records and prints a rate of `count` things in `elapsed`.
    pub fn rate(
        &mut self,
        key: &str,
        label: &str,
        count: u64,
        elapsed: Duration,
        unit: &str,
    ) -> f64 {
        let rate = count as f64 / elapsed.as_secs_f64().max(1e-9);
        self.figure(key, label, rate, unit)
    }

    /// Records and prints a target check.
    pub fn target(&mut self, label: &str, value: f64, compare: Compare, target: f64, unit: &str) {
        let met = match compare {
            Compare::AtLeast => value >= target,
            Compare::Below => value < target,
        };
        let relation = match compare {
            Compare::AtLeast => "≥",
            Compare::Below => "<",
        };
        println!(
            "  target {label}: {} {unit} (wanted {relation} {} {unit}) — {}",
            format_value(value),
            format_value(target),
            if met { "met" } else { "MISSED" }
        );
        self.targets.push(TargetCheck {
            label: label.to_string(),
            value,
            compare,
            target,
            unit: unit.to_string(),
            met,
        });
    }

    /// Records and prints a note.
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        println!("  note: {note}");
        self.notes.push(note);
    }

    /// Looks a figure up by key (for ratios across sections).
    pub fn value(&self, key: &str) -> Option<f64> {
        self.figures
            .iter()
            .rev()
            .find(|figure| figure.key == key)
            .map(|figure| figure.value)
    }

    /// The closing table: every target, met or missed.
    pub fn print_summary(&self) {
        println!("\n== targets");
        for check in &self.targets {
            println!(
                "  {:<7} {:<58} {} {}",
                if check.met { "met" } else { "MISSED" },
                check.label,
                format_value(check.value),
                check.unit
            );
        }
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self).expect("a report serializes");
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// Section heading.
pub fn section(title: &str) {
    println!("\n== {title}");
}

/// Three significant digits, thousands separated, so rates and microseconds read alike.
pub fn format_value(value: f64) -> String {
    if !value.is_finite() {
        return format!("{value}");
    }
    if value.abs() >= 1000.0 {
        let rounded = value.round() as i64;
        let digits = rounded.unsigned_abs().to_string();
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        if rounded < 0 {
            out.insert(0, '-');
        }
        out
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// Latency percentiles of a sample, in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

/// Nearest-rank percentiles of `samples` (sorted here).
pub fn percentiles(samples: &mut [Duration]) -> Percentiles {
    assert!(!samples.is_empty(), "percentiles of an empty sample");
    samples.sort_unstable();
    let rank = |p: f64| {
        let index = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[index].as_secs_f64() * 1e6
    };
    Percentiles {
        count: samples.len(),
        p50_us: rank(0.50),
        p99_us: rank(0.99),
        max_us: samples[samples.len() - 1].as_secs_f64() * 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_with_separators_and_three_digits() {
        assert_eq!(format_value(1_234_567.4), "1,234,567");
        assert_eq!(format_value(-5_000.0), "-5,000");
        assert_eq!(format_value(12.345), "12.3");
        assert_eq!(format_value(0.25), "0.250");
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        samples.reverse();
        let p = percentiles(&mut samples);
        assert_eq!(p.count, 100);
        assert_eq!(p.p50_us, 50.0);
        assert_eq!(p.p99_us, 99.0);
        assert_eq!(p.max_us, 100.0);
    }

    #[test]
    fn a_target_is_met_or_missed_by_its_comparison() {
        let mut report = Report::default();
        report.target("fast", 2.0, Compare::Below, 1.0, "ms");
        report.target("many", 2.0, Compare::AtLeast, 1.0, "/s");
        assert!(!report.targets[0].met);
        assert!(report.targets[1].met);
    }
}
