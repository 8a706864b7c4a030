//! BTF, the kernel's compact type format (`.BTF` of vmlinux, split `.BTF`
//! of modules, `/sys/kernel/btf/*`): header, type section with every kind
//! (INT … ENUM64), string section; split BTF continues its base's type ids
//! and string offsets.
//!
//! Reference: Documentation/bpf/btf.rst.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// A type id: 0 is `void`, the first type of a blob is 1 (or, for split
/// BTF, one past the base's last).
pub type TypeId = u32;

/// The BTF magic number.
pub const MAGIC: u16 = 0xeb9f;

/// One member of a struct or union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: u32,
    pub ty: TypeId,
    /// Offset in bits from the start of the aggregate.
    pub bit_offset: u32,
    /// Width of a bitfield (0: not a bitfield).
    pub bitfield_size: u8,
}

/// One enumerator (ENUM and ENUM64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enumerator {
    pub name: u32,
    pub value: i64,
}

/// One parameter of a function prototype (name 0 and type 0: `...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: u32,
    pub ty: TypeId,
}

/// One variable of a DATASEC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarSecInfo {
    pub ty: TypeId,
    pub offset: u32,
    pub size: u32,
}

/// What a type is, with its kind-specific data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Void,
    Int {
        size: u32,
        /// BTF_INT_SIGNED (1), CHAR (2), BOOL (4).
        encoding: u8,
        offset: u8,
        bits: u8,
    },
    Ptr(TypeId),
    Array {
        elem: TypeId,
        index: TypeId,
        nelems: u32,
    },
    Struct {
        size: u32,
        members: Vec<Member>,
    },
    Union {
        size: u32,
        members: Vec<Member>,
    },
    Enum {
        size: u32,
        signed: bool,
        values: Vec<Enumerator>,
    },
    Enum64 {
        size: u32,
        signed: bool,
        values: Vec<Enumerator>,
    },
    /// A forward declaration of a struct (or union).
    Fwd {
        union: bool,
    },
    Typedef(TypeId),
    Volatile(TypeId),
    Const(TypeId),
    Restrict(TypeId),
    Func {
        proto: TypeId,
        /// 0 static, 1 global, 2 extern.
        linkage: u16,
    },
    FuncProto {
        ret: TypeId,
        params: Vec<Param>,
    },
    Var {
        ty: TypeId,
        linkage: u32,
    },
    Datasec {
        size: u32,
        vars: Vec<VarSecInfo>,
    },
    Float {
        size: u32,
    },
    DeclTag {
        ty: TypeId,
        /// -1: the tag is on the type itself, else on this member/param.
        component: i32,
    },
    TypeTag(TypeId),
}

impl Kind {
    /// The BTF_KIND_* name, lowercase.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Void => "void",
            Kind::Int { .. } => "int",
            Kind::Ptr(_) => "ptr",
            Kind::Array { .. } => "array",
            Kind::Struct { .. } => "struct",
            Kind::Union { .. } => "union",
            Kind::Enum { .. } => "enum",
            Kind::Enum64 { .. } => "enum64",
            Kind::Fwd { .. } => "fwd",
            Kind::Typedef(_) => "typedef",
            Kind::Volatile(_) => "volatile",
            Kind::Const(_) => "const",
            Kind::Restrict(_) => "restrict",
            Kind::Func { .. } => "func",
            Kind::FuncProto { .. } => "func_proto",
            Kind::Var { .. } => "var",
            Kind::Datasec { .. } => "datasec",
            Kind::Float { .. } => "float",
            Kind::DeclTag { .. } => "decl_tag",
            Kind::TypeTag(_) => "type_tag",
        }
    }
}

/// One type: its name (an offset into the strings) and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    pub name: u32,
    pub kind: Kind,
}

/// A parsed BTF blob, or a split blob merged over its base: type ids and
/// string offsets are those of the kernel (base first).
#[derive(Debug, Clone)]
pub struct Btf {
    /// Index = type id; `types[0]` is `void`.
    types: Vec<Type>,
    strings: Vec<u8>,
    /// The first id of the split part (1 for a base blob).
    split_start: TypeId,
    by_name: HashMap<(u8, Box<str>), TypeId>,
}

/// What [`Btf::find`] looks a name up as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameSpace {
    Func = 0,
    Var = 1,
    /// struct, union, enum, enum64, typedef (C's tag and ordinary names).
    Type = 2,
}

impl Btf {
    /// Parses a base blob (vmlinux's `.BTF`, `/sys/kernel/btf/vmlinux`).
    pub fn parse(data: &[u8], path: &str) -> Result<Btf> {
        let mut b = Btf {
            types: vec![Type {
                name: 0,
                kind: Kind::Void,
            }],
            strings: Vec::new(),
            split_start: 1,
            by_name: HashMap::new(),
        };
        b.append(data, path)?;
        Ok(b)
    }

    /// Parses a split blob (a module's `.BTF`) over `base`.
    pub fn parse_split(data: &[u8], base: &Btf, path: &str) -> Result<Btf> {
        let mut b = Btf {
            types: base.types.clone(),
            strings: base.strings.clone(),
            split_start: base.types.len() as TypeId,
            by_name: HashMap::new(),
        };
        b.append(data, path)?;
        Ok(b)
    }

    /// The number of types, `void` included (the next id).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Only `void`.
    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    /// The first type id of the split part (1 for a base blob).
    pub fn split_start(&self) -> TypeId {
        self.split_start
    }

    pub fn get(&self, id: TypeId) -> Option<&Type> {
        self.types.get(id as usize)
    }

    /// Every type with its id, `void` first.
    pub fn types(&self) -> impl Iterator<Item = (TypeId, &Type)> {
        self.types.iter().enumerate().map(|(i, t)| (i as TypeId, t))
    }

    /// The string at `off` (empty when out of range or not UTF-8).
    pub fn str(&self, off: u32) -> &str {
        let Some(b) = self.strings.get(off as usize..) else {
            return "";
        };
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        std::str::from_utf8(&b[..end]).unwrap_or("")
    }

    /// The name of type `id` ("" for anonymous types).
    pub fn name_of(&self, id: TypeId) -> &str {
        self.get(id).map(|t| self.str(t.name)).unwrap_or("")
    }

    /// The first FUNC, VAR or named type (struct/union/enum/typedef) called `name`.
    /// A full definition is preferred over a forward declaration.
    pub fn find(&self, ns: NameSpace, name: &str) -> Option<TypeId> {
        self.by_name.get(&(ns as u8, name.into())).copied()
    }

    /// Follows typedefs and qualifiers (not pointers) to the underlying type.
    pub fn resolve(&self, mut id: TypeId) -> TypeId {
        for _ in 0..64 {
            match self.get(id).map(|t| &t.kind) {
                Some(
                    Kind::Typedef(t)
                    | Kind::Const(t)
                    | Kind::Volatile(t)
                    | Kind::Restrict(t)
                    | Kind::TypeTag(t),
                ) => id = *t,
                _ => break,
            }
        }
        id
    }

    fn append(&mut self, data: &[u8], path: &str) -> Result<()> {
        let bad = |msg: String| Error::Unrecognised {
            path: path.to_string(),
            msg: format!("BTF: {msg}"),
        };
        let big = match data.get(0..2) {
            Some([0x9f, 0xeb]) => false,
            Some([0xeb, 0x9f]) => true,
            _ => return Err(bad("no BTF magic".into())),
        };
        let rd = Reader { data, big };
        let hdr_len = rd.u32(4).ok_or_else(|| bad("truncated header".into()))? as usize;
        let field = |at: usize| rd.u32(at).ok_or_else(|| bad("truncated header".into()));
        if hdr_len < 24 {
            return Err(bad(format!("header length {hdr_len} < 24")));
        }
        let (type_off, type_len, str_off, str_len) =
            (field(8)?, field(12)?, field(16)?, field(20)?);
        let section = |off: u32, len: u32, what: &str| {
            hdr_len
                .checked_add(off as usize)
                .and_then(|s| Some((s, s.checked_add(len as usize)?)))
                .and_then(|(s, e)| data.get(s..e))
                .ok_or_else(|| bad(format!("{what} section {off}+{len} is outside the data")))
        };
        let types = section(type_off, type_len, "type")?;
        let strings = section(str_off, str_len, "string")?;
        // A split blob's string offsets count on from its base's strings.
        self.strings.extend_from_slice(strings);

        let rd = Reader { data: types, big };
        let mut at = 0usize;
        while at < types.len() {
            let id = self.types.len();
            let start = at;
            let trunc = || bad(format!("type {id} at byte {start} is truncated"));
            let name = rd.u32(at).ok_or_else(trunc)?;
            let info = rd.u32(at + 4).ok_or_else(trunc)?;
            let size_type = rd.u32(at + 8).ok_or_else(trunc)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind_flag = info >> 31 == 1;
            let kind_no = (info >> 24) & 0x1f;
            let mut items = |n: usize, each: usize| -> Result<Vec<&[u8]>> {
                let len = n.checked_mul(each).ok_or_else(trunc)?;
                let b = types.get(at..at + len).ok_or_else(trunc)?;
                at += len;
                Ok(b.chunks_exact(each).collect())
            };
            let u = |b: &[u8], i: usize| Reader { data: b, big }.u32(i * 4).unwrap_or(0);
            let kind = match kind_no {
                1 => {
                    let v = u(items(1, 4)?[0], 0);
                    Kind::Int {
                        size: size_type,
                        encoding: ((v >> 24) & 0xf) as u8,
                        offset: ((v >> 16) & 0xff) as u8,
                        bits: (v & 0xff) as u8,
                    }
                }
                2 => Kind::Ptr(size_type),
                3 => {
                    let a = items(1, 12)?[0];
                    Kind::Array {
                        elem: u(a, 0),
                        index: u(a, 1),
                        nelems: u(a, 2),
                    }
                }
                4 | 5 => {
                    let members = items(vlen, 12)?
                        .into_iter()
                        .map(|m| {
                            let off = u(m, 2);
                            let (bit_offset, bitfield_size) = if kind_flag {
                                (off & 0x00ff_ffff, (off >> 24) as u8)
                            } else {
                                (off, 0)
                            };
                            Member {
                                name: u(m, 0),
                                ty: u(m, 1),
                                bit_offset,
                                bitfield_size,
                            }
                        })
                        .collect();
                    if kind_no == 4 {
                        Kind::Struct {
                            size: size_type,
                            members,
                        }
                    } else {
                        Kind::Union {
                            size: size_type,
                            members,
                        }
                    }
                }
                6 => Kind::Enum {
                    size: size_type,
                    signed: kind_flag,
                    values: items(vlen, 8)?
                        .into_iter()
                        .map(|e| Enumerator {
                            name: u(e, 0),
                            value: if kind_flag {
                                i64::from(u(e, 1) as i32)
                            } else {
                                i64::from(u(e, 1))
                            },
                        })
                        .collect(),
                },
                7 => Kind::Fwd { union: kind_flag },
                8 => Kind::Typedef(size_type),
                9 => Kind::Volatile(size_type),
                10 => Kind::Const(size_type),
                11 => Kind::Restrict(size_type),
                12 => Kind::Func {
                    proto: size_type,
                    linkage: vlen as u16,
                },
                13 => Kind::FuncProto {
                    ret: size_type,
                    params: items(vlen, 8)?
                        .into_iter()
                        .map(|p| Param {
                            name: u(p, 0),
                            ty: u(p, 1),
                        })
                        .collect(),
                },
                14 => Kind::Var {
                    ty: size_type,
                    linkage: u(items(1, 4)?[0], 0),
                },
                15 => Kind::Datasec {
                    size: size_type,
                    vars: items(vlen, 12)?
                        .into_iter()
                        .map(|v| VarSecInfo {
                            ty: u(v, 0),
                            offset: u(v, 1),
                            size: u(v, 2),
                        })
                        .collect(),
                },
                16 => Kind::Float { size: size_type },
                17 => Kind::DeclTag {
                    ty: size_type,
                    component: u(items(1, 4)?[0], 0) as i32,
                },
                18 => Kind::TypeTag(size_type),
                19 => Kind::Enum64 {
                    size: size_type,
                    signed: kind_flag,
                    values: items(vlen, 12)?
                        .into_iter()
                        .map(|e| Enumerator {
                            name: u(e, 0),
                            value: ((u64::from(u(e, 2)) << 32) | u64::from(u(e, 1))) as i64,
                        })
                        .collect(),
                },
                k => return Err(bad(format!("type {id}: unknown kind {k}"))),
            };
            self.types.push(Type { name, kind });
        }
        self.index();
        Ok(())
    }

    fn index(&mut self) {
        let mut map: HashMap<(u8, Box<str>), TypeId> = HashMap::new();
        for (id, t) in self.types.iter().enumerate() {
            let ns = match t.kind {
                Kind::Func { .. } => NameSpace::Func,
                Kind::Var { .. } => NameSpace::Var,
                Kind::Struct { .. }
                | Kind::Union { .. }
                | Kind::Enum { .. }
                | Kind::Enum64 { .. }
                | Kind::Typedef(_)
                | Kind::Fwd { .. } => NameSpace::Type,
                _ => continue,
            };
            let name = self.str(t.name);
            if name.is_empty() {
                continue;
            }
            let fwd = matches!(t.kind, Kind::Fwd { .. });
            map.entry((ns as u8, name.into()))
                .and_modify(|old| {
                    let old_fwd = matches!(
                        self.types.get(*old as usize).map(|t| &t.kind),
                        Some(Kind::Fwd { .. })
                    );
                    if old_fwd && !fwd {
                        *old = id as TypeId;
                    }
                })
                .or_insert(id as TypeId);
        }
        self.by_name = map;
    }
}

struct Reader<'a> {
    data: &'a [u8],
    big: bool,
}

impl Reader<'_> {
    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    /// A little-endian blob from raw type words and a string table.
    pub(crate) fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        for w in types {
            t.extend(w.to_le_bytes());
        }
        let mut b = Vec::new();
        b.extend(MAGIC.to_le_bytes());
        b.extend([1u8, 0]);
        for w in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            b.extend(w.to_le_bytes());
        }
        b.extend(t);
        b.extend(strings);
        b
    }

    fn info(kind: u32, vlen: u32, flag: bool) -> u32 {
        (u32::from(flag) << 31) | (kind << 24) | vlen
    }

    #[test]
    fn every_kind_parses() {
        // strings: 0 "", 1 "int", 5 "s", 7 "a", 9 "f", 11 "E", 13 "V", 15 "x"
        let s = b"\0int\0s\0a\0f\0E\0V\0x\0";
        let types = [
            1,
            info(1, 0, false),
            4,
            (1 << 24) | 32, // 1 int
            0,
            info(2, 0, false),
            1, // 2 int *
            0,
            info(3, 0, false),
            0,
            1,
            1,
            4, // 3 int[4]
            5,
            info(4, 2, true),
            24,
            7,
            1,
            3 << 24,
            15,
            3,
            32, // 4 struct s { int a:3; int x[4]; }
            0,
            info(5, 1, false),
            4,
            7,
            1,
            0, // 5 union { int a; }
            11,
            info(6, 1, true),
            4,
            7,
            u32::MAX, // 6 enum E { a = -1 }
            5,
            info(7, 0, true),
            0, // 7 fwd union s
            15,
            info(8, 0, false),
            4, // 8 typedef struct s x
            0,
            info(9, 0, false),
            8, // 9 volatile
            0,
            info(10, 0, false),
            9, // 10 const
            0,
            info(11, 0, false),
            2, // 11 restrict
            0,
            info(13, 2, false),
            1,
            7,
            2,
            0,
            0, // 13 -> id 12: int (int *a, ...)
            9,
            info(12, 0, false) | 1,
            12, // 13 func f
            13,
            info(14, 0, false),
            1,
            1, // 14 var V
            0,
            info(15, 1, false),
            4,
            14,
            0,
            4, // 15 datasec
            0,
            info(16, 0, false),
            8, // 16 float
            15,
            info(17, 0, false),
            4,
            u32::MAX, // 17 decl_tag
            15,
            info(18, 0, false),
            1, // 18 type_tag
            11,
            info(19, 1, false),
            8,
            7,
            1,
            2, // 19 enum64 E { a = 0x200000001 }
        ];
        let b = Btf::parse(&blob(&types, s), "t").unwrap();
        assert_eq!(b.len(), 20);
        assert!(
            matches!(b.get(4).unwrap().kind, Kind::Struct { size: 24, ref members } if members[0].bitfield_size == 3 && members[1].bit_offset == 32)
        );
        assert!(
            matches!(b.get(6).unwrap().kind, Kind::Enum { ref values, .. } if values[0].value == -1)
        );
        assert!(
            matches!(b.get(19).unwrap().kind, Kind::Enum64 { ref values, .. } if values[0].value == 0x2_0000_0001)
        );
        assert_eq!(b.find(NameSpace::Func, "f"), Some(13));
        assert_eq!(b.find(NameSpace::Var, "V"), Some(14));
        // The definition wins over the forward declaration.
        assert_eq!(b.find(NameSpace::Type, "s"), Some(4));
        assert_eq!(b.resolve(10), 4);
        assert_eq!(b.resolve(11), 2);
        assert_eq!(b.name_of(8), "x");

        // A split blob continues ids and string offsets.
        let split_s = b"\0\0y\0";
        let split = [s.len() as u32 + 2, info(8, 0, false), 4];
        let m = Btf::parse_split(&blob(&split, split_s), &b, "m").unwrap();
        assert_eq!(m.split_start(), 20);
        assert_eq!(m.find(NameSpace::Type, "y"), Some(20));
    }

    #[test]
    fn corrupt_blobs_are_errors() {
        assert!(Btf::parse(b"", "t").is_err());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0], "t").is_err());
        let good = blob(&[1, 1 << 24, 4, 32], b"\0int\0");
        for n in 0..good.len() {
            let _ = Btf::parse(&good[..n], "t");
        }
        let mut bad_kind = good.clone();
        bad_kind[24 + 7] = 30;
        let e = Btf::parse(&bad_kind, "t").unwrap_err().to_string();
        assert!(e.contains("unknown kind"), "{e}");
    }
}
