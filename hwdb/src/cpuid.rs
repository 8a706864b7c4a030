//! Raw x86 CPUID dumps in hwloc's `hwloc-gather-cpuid` format
//! (`pu<N>` files: `<mask> <eax> <ebx> <ecx> <edx> => <eax> <ebx> <ecx> <edx>`).
//!
//! Only the leaves identification needs are decoded: leaf 0 (vendor
//! string), leaf 1 (family/model/stepping, per the Intel SDM and AMD APM
//! "CPUID Fn0000_0001_EAX" encoding) and 0x8000_0002..4 (brand string).

use std::collections::BTreeMap;

use crate::text::parse_hex_u64;

/// One CPU's CPUID leaves: (leaf, subleaf) → (eax, ebx, ecx, edx).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuidDump {
    pub leaves: BTreeMap<(u32, u32), [u32; 4]>,
}

impl CpuidDump {
    pub fn parse(text: &str) -> CpuidDump {
        let mut leaves = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((inp, out)) = line.split_once("=>") else {
                continue;
            };
            let inp: Vec<u32> = inp
                .split_whitespace()
                .filter_map(|w| parse_hex_u64(w).and_then(|n| u32::try_from(n).ok()))
                .collect();
            let out: Vec<u32> = out
                .split_whitespace()
                .filter_map(|w| parse_hex_u64(w).and_then(|n| u32::try_from(n).ok()))
                .collect();
            if inp.len() == 5 && out.len() == 4 {
                leaves.insert((inp[1], inp[3]), [out[0], out[1], out[2], out[3]]);
            }
        }
        CpuidDump { leaves }
    }

    fn leaf(&self, leaf: u32) -> Option<&[u32; 4]> {
        self.leaves.get(&(leaf, 0))
    }

    /// Leaf 0 vendor string (`GenuineIntel`, `HygonGenuine`, `  Shanghai  `, …).
    pub fn vendor(&self) -> Option<String> {
        let r = self.leaf(0)?;
        let mut b = Vec::with_capacity(12);
        for reg in [r[1], r[3], r[2]] {
            b.extend_from_slice(&reg.to_le_bytes());
        }
        Some(String::from_utf8_lossy(&b).to_string())
    }

    /// (display family, display model, stepping) from leaf 1 EAX.
    pub fn signature(&self) -> Option<(u32, u32, u32)> {
        let eax = self.leaf(1)?[0];
        Some(decode_x86_signature(eax))
    }

    /// Brand string from 0x8000_0002..=0x8000_0004, trimmed.
    pub fn brand(&self) -> Option<String> {
        let mut b = Vec::with_capacity(48);
        for leaf in 0x8000_0002u32..=0x8000_0004 {
            for reg in self.leaf(leaf)? {
                b.extend_from_slice(&reg.to_le_bytes());
            }
        }
        let s = String::from_utf8_lossy(&b)
            .trim_matches(char::from(0))
            .trim()
            .to_string();
        (!s.is_empty()).then_some(s)
    }
}

/// Decode CPUID leaf 1 EAX as Linux does (`arch/x86/lib/cpu.c`,
/// `x86_family()`/`x86_model()`): family = base + extended when base is
/// 0xF; model = base | extended << 4 when the family is 6 or higher (this
/// matters for Zhaoxin family 7 parts).
pub fn decode_x86_signature(eax: u32) -> (u32, u32, u32) {
    let stepping = eax & 0xf;
    let base_model = (eax >> 4) & 0xf;
    let base_family = (eax >> 8) & 0xf;
    let ext_model = (eax >> 16) & 0xf;
    let ext_family = (eax >> 20) & 0xff;
    let family = if base_family == 0xf {
        base_family + ext_family
    } else {
        base_family
    };
    let model = if family >= 0x6 {
        base_model | (ext_model << 4)
    } else {
        base_model
    };
    (family, model, stepping)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_decoding() {
        // Hygon Dhyana: family 0x18 model 0 (from the hwloc dump's leaf 1).
        assert_eq!(decode_x86_signature(0x0090_0f00), (0x18, 0, 0));
        // Zhaoxin KX-6640MA as SMBIOS type 4 ID "B0 07 03 00" → 0x000307B0.
        assert_eq!(decode_x86_signature(0x0003_07b0), (7, 0x3b, 0));
    }
}
