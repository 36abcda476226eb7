//! What a benchmark ran on, printed above its table. Figures from two
//! machines do not compare, and the machine under this project's
//! benchmarks changed three times in two days (net/README.md): a table that
//! names its machine says which others it may be read against.

use std::fmt;

/// The CPU, how many the process may use, whether a hypervisor is under
/// it, the kernel, and which checksum code runs (it decides much of the
/// cost of large frames and records).
#[derive(Debug)]
pub(crate) struct Machine {
    cpu: String,
    cpus: usize,
    virtualized: bool,
    kernel: String,
    checksum: &'static str,
}

impl Machine {
    /// This machine, from `/proc` where it can be read.
    pub(crate) fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(
            |_| std::env::consts::OS.to_string(),
            |release| format!("Linux {}", release.trim()),
        );
        Machine {
            cpu: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".to_string()),
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            virtualized: has_flag(&cpuinfo, "hypervisor"),
            kernel,
            checksum: synod_net::checksum::implementation(),
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let guest = if self.virtualized {
            ", under a hypervisor"
        } else {
            ""
        };
        write!(
            f,
            "machine: {}, {} CPUs{guest}, {}; checksums: {}",
            self.cpu, self.cpus, self.kernel, self.checksum
        )
    }
}

/// The first processor's model name in `/proc/cpuinfo` text.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    fields(cpuinfo, "model name")
        .find(|value| !value.is_empty())
        .map(str::to_string)
}

/// Whether the first processor's `flags` line in `/proc/cpuinfo` text has
/// `flag` (a whole word).
fn has_flag(cpuinfo: &str, flag: &str) -> bool {
    fields(cpuinfo, "flags")
        .next()
        .is_some_and(|flags| flags.split_whitespace().any(|word| word == flag))
}

/// The values of every `key: value` line named `key`, trimmed, in order.
fn fields<'a>(cpuinfo: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> {
    cpuinfo.lines().filter_map(move |line| {
        let (name, value) = line.split_once(':')?;
        (name.trim() == key).then(|| value.trim())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const XEON: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\n\
        model name\t: Intel(R) Xeon(R) Processor\n\
        flags\t\t: fpu sse4_2 hypervisor avx512f\n\nprocessor\t: 1\n\
        model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu\n";

    #[test]
    fn the_model_and_the_hypervisor_flag_come_from_the_first_processor() {
        assert_eq!(
            cpu_model(XEON).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert!(has_flag(XEON, "hypervisor"));
        assert!(has_flag(XEON, "avx512f"));
        assert!(!has_flag(XEON, "avx2"));
        // A word, not a piece of one.
        assert!(!has_flag(XEON, "avx512"));
    }

    #[test]
    fn a_cpuinfo_without_the_fields_reads_as_unknown_and_bare_metal() {
        // Some architectures name the model otherwise ("cpu model", "uarch").
        let other = "processor\t: 0\ncpu model\t: something\nmodel name\t:\n";
        assert_eq!(cpu_model(other), None);
        assert!(!has_flag(other, "hypervisor"));
        assert_eq!(cpu_model(""), None);
    }

    #[test]
    fn the_line_names_every_field() {
        let machine = Machine {
            cpu: "Intel(R) Xeon(R) Processor".to_string(),
            cpus: 2,
            virtualized: true,
            kernel: "Linux 6.18.44".to_string(),
            checksum: "512-bit fold",
        };
        assert_eq!(
            machine.to_string(),
            "machine: Intel(R) Xeon(R) Processor, 2 CPUs, under a hypervisor, \
             Linux 6.18.44; checksums: 512-bit fold"
        );
        let bare = Machine {
            virtualized: false,
            ..machine
        };
        assert_eq!(
            bare.to_string(),
            "machine: Intel(R) Xeon(R) Processor, 2 CPUs, Linux 6.18.44; \
             checksums: 512-bit fold"
        );
    }

    #[test]
    fn probing_this_machine_finds_a_cpu_count_and_a_checksum() {
        let machine = Machine::probe();
        assert!(machine.cpus >= 1, "{machine}");
        assert!(
            ["512-bit fold", "256-bit fold", "crc32c crate"].contains(&machine.checksum),
            "{machine}"
        );
        assert!(machine.to_string().starts_with("machine: "), "{machine}");
    }
}
