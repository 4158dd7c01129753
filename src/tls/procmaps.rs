// SPDX-License-Identifier: GPL-3.0-or-later
//! `/proc/PID/maps`: the files a process has mapped, with their device and
//! inode (a library mapped by many processes is one file to attach to).

/// One file-backed mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The path as the process sees it (its mount namespace).
    pub path: String,
    /// Device as `major:minor` (hex in the file).
    pub dev: (u32, u32),
    pub ino: u64,
}

/// The file-backed mappings of a `maps` text, each file once (in order of
/// first appearance). Lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Mapped> {
    let mut out: Vec<Mapped> = Vec::new();
    for line in text.lines() {
        // address perms offset dev inode path (the path may contain spaces)
        let mut it = line.splitn(6, ' ');
        let (Some(_), Some(_), Some(_), Some(dev), Some(ino), Some(path)) = (
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
            it.next(),
        ) else {
            continue;
        };
        let path = path.trim_start();
        let Ok(ino) = ino.parse::<u64>() else {
            continue;
        };
        if ino == 0 || !path.starts_with('/') {
            continue;
        }
        let Some((ma, mi)) = dev.split_once(':') else {
            continue;
        };
        let (Ok(ma), Ok(mi)) = (u32::from_str_radix(ma, 16), u32::from_str_radix(mi, 16)) else {
            continue;
        };
        // a file replaced on disk after it was mapped: not the same file
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        if out
            .iter()
            .any(|m| m.ino == ino && m.dev == (ma, mi) && m.path == path)
        {
            continue;
        }
        out.push(Mapped {
            path: path.to_string(),
            dev: (ma, mi),
            ino,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_lines() {
        let text = "\
55d0c0a00000-55d0c0a2b000 r--p 00000000 fe:01 1311035                    /usr/sbin/nginx
7f3b1c000000-7f3b1c021000 rw-p 00000000 00:00 0 
7f3b1c400000-7f3b1c49b000 r--p 00000000 fe:01 1318555                    /usr/lib/x86_64-linux-gnu/libssl.so.3
7f3b1c49b000-7f3b1c5f6000 r-xp 0009b000 fe:01 1318555                    /usr/lib/x86_64-linux-gnu/libssl.so.3
7ffd5a1f3000-7ffd5a214000 rw-p 00000000 00:00 0                          [stack]
7f3b1c600000-7f3b1c601000 r--p 00000000 103:02 42                        /tmp/a b (deleted)
garbage
";
        let m = parse(text);
        assert_eq!(
            m,
            vec![
                Mapped {
                    path: "/usr/sbin/nginx".into(),
                    dev: (0xfe, 1),
                    ino: 1311035
                },
                Mapped {
                    path: "/usr/lib/x86_64-linux-gnu/libssl.so.3".into(),
                    dev: (0xfe, 1),
                    ino: 1318555
                },
                Mapped {
                    path: "/tmp/a b".into(),
                    dev: (0x103, 2),
                    ino: 42
                },
            ]
        );
    }

    #[test]
    fn never_panics_on_junk() {
        for t in [
            "",
            " ",
            "a b c d e f",
            "1-2 r 0 zz:1 5 /x",
            "1-2 r 0 1:1 -5 /x",
        ] {
            let _ = parse(t);
        }
    }
}
