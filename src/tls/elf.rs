// SPDX-License-Identifier: GPL-3.0-or-later
//! Executables that carry a TLS library inside (statically linked OpenSSL
//! or BoringSSL: a static nginx, Envoy): their own symbol tables
//! (`.symtab`, `.dynsym`) say whether they define `SSL_read`/`SSL_write`.
//! A binary stripped of its symbols cannot be probed: it is recognised by
//! the library's version string, so that the log can say so once.

use object::{Object, ObjectSymbol};

use crate::event::TlsLibrary;

/// What an executable holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It defines the TLS functions itself: uprobes go on it.
    Defines(TlsLibrary),
    /// A TLS library is linked in (its version string is there) but the
    /// binary has no symbols for its functions: not captured.
    NoSymbols(TlsLibrary),
    /// No TLS library inside (it may import one from a shared library,
    /// which is found by name).
    NotTls,
}

/// Look at an ELF file's bytes. Never panics; anything that does not parse
/// as ELF is `NotTls`.
pub fn inspect(data: &[u8]) -> Verdict {
    let Ok(file) = object::File::parse(data) else {
        return Verdict::NotTls;
    };
    let (mut read, mut write, mut boring, mut imports) = (false, false, false, false);
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        let Ok(name) = sym.name() else { continue };
        if sym.is_undefined() {
            imports |= name == "SSL_read" || name == "SSL_write";
            continue;
        }
        match name {
            "SSL_read" => read = true,
            "SSL_write" => write = true,
            n if n.starts_with("BORINGSSL_") => boring = true,
            _ => {}
        }
    }
    let version = linked_in(data);
    if read && write {
        let lib = if boring || version == Some(TlsLibrary::BoringSsl) {
            TlsLibrary::BoringSsl
        } else {
            TlsLibrary::OpenSsl
        };
        return Verdict::Defines(lib);
    }
    match version {
        // linked in, not imported, and no symbol says where
        Some(lib) if !imports && file.symbols().next().is_none() => Verdict::NoSymbols(lib),
        _ => Verdict::NotTls,
    }
}

/// The TLS library whose code is in `data`, by the source file name its
/// error reporting embeds (`OPENSSL_FILE`, `OPENSSL_PUT_ERROR`): libssl's
/// `ssl/ssl_lib.c` (OpenSSL) or `ssl/ssl_lib.cc` (BoringSSL), which a
/// binary with libcrypto alone (no TLS) does not have; or the version
/// text, when `OpenSSL_version` is linked in.
pub fn linked_in(data: &[u8]) -> Option<TlsLibrary> {
    let has = |n: &[u8]| memchr::memmem::find(data, n).is_some();
    if has(b"ssl/ssl_lib.cc\0") || has(b"BoringSSL") {
        Some(TlsLibrary::BoringSsl)
    } else if has(b"ssl/ssl_lib.c\0") || has(b"OpenSSL 1.1.") || has(b"OpenSSL 3.") {
        Some(TlsLibrary::OpenSsl)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_is_named_by_its_source_file() {
        assert_eq!(
            linked_in(b"x../ssl/ssl_lib.c\0y"),
            Some(TlsLibrary::OpenSsl)
        );
        assert_eq!(
            linked_in(b"x../ssl/ssl_lib.cc\0y"),
            Some(TlsLibrary::BoringSsl)
        );
        assert_eq!(
            linked_in(b"OpenSSL 3.0.2 15 Mar 2022"),
            Some(TlsLibrary::OpenSsl)
        );
        assert_eq!(linked_in(b"../crypto/evp/evp_lib.c\0"), None);
        assert_eq!(linked_in(b""), None);
    }

    #[test]
    fn junk_is_not_tls() {
        for d in [
            &b""[..],
            b"\x7fELF",
            b"\x7fELF\x02\x01\x01\0garbage",
            &[0u8; 4096],
        ] {
            assert_eq!(inspect(d), Verdict::NotTls);
        }
    }

    #[test]
    fn this_test_binary_is_not_tls() {
        let exe = std::fs::read("/proc/self/exe").unwrap();
        assert_eq!(inspect(&exe), Verdict::NotTls);
    }

    #[test]
    fn a_shared_libssl_defines_the_functions() {
        // Debian's libssl3 (openssl, curl and python3 depend on it)
        let p = if cfg!(target_arch = "aarch64") {
            "/usr/lib/aarch64-linux-gnu/libssl.so.3"
        } else {
            "/usr/lib/x86_64-linux-gnu/libssl.so.3"
        };
        let d = std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e} (scripts/setup.sh)"));
        assert_eq!(inspect(&d), Verdict::Defines(TlsLibrary::OpenSsl));
    }
}
