"""The PTX parser: what LLVM's NVPTX backend emits for tessera, as `Kernel` objects.

Handles the `.entry` signature (parameter sizes and offsets from natural or `.align` alignment),
register declarations (`%r<12>` ranges), shared-memory declarations, labels, multi-line statements,
inline-asm `{ }` scopes (registers and labels declared inside a scope are renamed `name@scope`, so
the same label may repeat in every scope) and every operand form: registers, integer and float
immediates, `{vector}` operands with `_` sinks, `[reg]`, `[reg+imm]`, `[sym]`, `[sym+imm]`, TMA's
`[tmap, {c0, c1}]`, special registers and symbols. Statements are split on `;` with regular
expressions (no character loop): semicolons never occur inside an operand.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from ...errors import EmulatorError

_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_LINE_COMMENT = re.compile(r"//[^\n]*")
_ENTRY = re.compile(r"\.entry\s+([\w$]+)\s*\(([^)]*)\)([^{]*)\{", re.S)
_PARAM = re.compile(r"\.param\s+(?:\.align\s+(\d+)\s+)?\.(\w+)(?:\s+\.ptr)?(?:\s+\.\w+)*?(?:\s+\.align\s+(\d+))?"
                    r"\s+([\w$]+)(?:\[(\d+)\])?$")
_LABEL = re.compile(r"([\w$]+):(?!:)")
_OPCODE = re.compile(r"[\w.:]+")
_SREG = re.compile(r"%(tid|ntid|ctaid|nctaid|laneid|warpid|nwarpid|clock|clock64|dynamic_smem_size)(\.[xyz])?$")
_INT = re.compile(r"-?(0[xX][0-9a-fA-F]+|\d+)U?$")
_MEM_OFFSET = re.compile(r"(.+?)\s*\+\s*(-?(?:0[xX][0-9a-fA-F]+|\d+))$")
_SHARED_DECL = re.compile(r"(\.extern\s+)?\.shared\s+(?:\.align\s+(\d+)\s+)?\.(\w+)\s+([\w$]+)\[(\d*)\]")
_REG_DECL = re.compile(r"\.reg\s*\.(\w+)\s+(.*)$", re.S)
_REG_RANGE = re.compile(r"(%?[\w$]+)<(\d+)>$")

TYPE_BITS = {"pred": 1, "b8": 8, "u8": 8, "s8": 8, "b16": 16, "u16": 16, "s16": 16, "f16": 16, "bf16": 16,
             "b32": 32, "u32": 32, "s32": 32, "f32": 32, "bf16x2": 32, "f16x2": 32, "b64": 64, "u64": 64,
             "s64": 64, "f64": 64, "b128": 128}


def type_bits(t: str) -> int:
    try:
        return TYPE_BITS[t]
    except KeyError:
        raise EmulatorError(f"unknown PTX type .{t}") from None


# Operands: tuples whose first element names the kind.
#   ("reg", name) ("imm", int) ("immf32", bits) ("immf64", bits) ("sreg", "tid.x") ("sym", name) ("sink",)
#   ("vec", [operands]) ("mem", base operand, byte offset) ("tmap", descriptor operand, ("vec", coords))
#   ("pair", value operand, predicate operand) for `d|p` destinations

@dataclass
class Instruction:
    index: int                 # position in the kernel's instruction list (the emulator's pc)
    line: int                  # 1-based line in the PTX text
    pred: str | None           # guard predicate register, `@%p` / `@!%p`
    negate: bool
    opcode: str                # base opcode: "add", "ld", "mma", ...
    mods: list                 # the dotted modifiers: ["rn", "f32"]
    operands: list
    text: str                  # the statement as written (whitespace collapsed), for messages

    @property
    def form(self) -> str:
        return ".".join([self.opcode] + self.mods)


@dataclass
class Kernel:
    name: str
    params: list               # (name, size in bytes, offset)
    instructions: list
    labels: dict               # label -> instruction index
    reg_bits: dict             # register name -> declared width (1 for predicates)
    shared_syms: dict = field(default_factory=dict)   # static shared symbol -> (offset, size)
    static_shared: int = 0
    dynamic_sym: str | None = None
    dynamic_align: int = 16
    text: str = ""


def split_top(s: str, sep: str = ",") -> list:
    """Split on `sep` outside brackets and braces."""
    if "[" not in s and "{" not in s:
        return [x.strip() for x in s.split(sep) if x.strip()]
    out, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c in "[{(":
            depth += 1
        elif c in "]})":
            depth -= 1
        elif c == sep and depth == 0:
            out.append(s[start:i].strip())
            start = i + 1
    tail = s[start:].strip()
    if tail:
        out.append(tail)
    return [x for x in out if x]


def parse_operand(tok: str, rename: dict):
    tok = tok.strip()
    if tok.startswith("{"):
        return ("vec", [parse_operand(x, rename) for x in split_top(tok[1:tok.rindex("}")])])
    if tok.startswith("["):
        inner = tok[1:tok.rindex("]")].strip()
        if "," in inner:                                   # [tmap, {c0, c1}]
            parts = split_top(inner)
            return ("tmap", parse_operand(parts[0], rename), parse_operand(parts[1], rename))
        m = _MEM_OFFSET.fullmatch(inner)
        if m:
            return ("mem", parse_operand(m.group(1), rename), int(m.group(2), 0))
        return ("mem", parse_operand(inner, rename), 0)
    if tok == "_":
        return ("sink",)
    if "|" in tok:                                         # `d|p`: a value and a predicate destination
        first, second = tok.split("|", 1)
        return ("pair", parse_operand(first, rename), parse_operand(second, rename))
    m = _SREG.match(tok)
    if m:
        return ("sreg", m.group(1) + (m.group(2) or ""))
    if tok in rename:
        return ("reg", rename[tok])
    if tok.startswith("%"):
        return ("reg", tok)
    if tok[:2] in ("0f", "0F"):
        return ("immf32", int(tok[2:], 16))
    if tok[:2] in ("0d", "0D"):
        return ("immf64", int(tok[2:], 16))
    if _INT.match(tok):
        return ("imm", int(tok.rstrip("U"), 0))
    return ("sym", tok)


def _line_of(starts, pos):
    return bisect.bisect_right(starts, pos)


def _strip_comments(ptx: str) -> str:
    """Comments removed, line numbers kept (a block comment becomes as many newlines)."""
    text = _BLOCK_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), ptx)
    return _LINE_COMMENT.sub("", text)


def _parse_params(sig: str, where) -> list:
    params, off = [], 0
    for p in split_top(sig):
        m = _PARAM.search(" ".join(p.split()))
        if not m:
            raise EmulatorError(f"cannot parse the kernel parameter `{p.strip()}` (PTX line {where})")
        align_pre, ty, name, count = m.group(1), m.group(2), m.group(4), m.group(5)
        size = type_bits(ty) // 8 * (int(count) if count else 1)
        align = int(align_pre or m.group(3) or 0) or size
        off = (off + align - 1) // align * align
        params.append((name, size, off))
        off += size
    return params


def _statements(body: str, base: int, starts):
    """Yields (kind, text, line) with kind in scope+ / scope- / label / stmt."""
    for m in re.finditer(r"[^;]*;|[^;]+$", body):
        chunk = m.group(0)
        i, n = 0, len(chunk)
        while True:
            while i < n and chunk[i].isspace():
                i += 1
            if i >= n:
                break
            c = chunk[i]
            if c == "{":
                yield "scope+", None, 0
                i += 1
                continue
            if c == "}":
                yield "scope-", None, 0
                i += 1
                continue
            lm = _LABEL.match(chunk, i)
            if lm:
                yield "label", lm.group(1), _line_of(starts, base + m.start() + i)
                i = lm.end()
                continue
            stmt = chunk[i:]
            if stmt.endswith(";"):
                yield "stmt", stmt[:-1], _line_of(starts, base + m.start() + i)
            elif stmt.strip():
                raise EmulatorError(f"unterminated PTX statement `{' '.join(stmt.split())[:80]}` "
                                    f"(line {_line_of(starts, base + m.start() + i)})")
            break


def _reg_names(decl: str) -> tuple:
    m = _REG_DECL.match(decl)
    if not m:
        raise EmulatorError(f"cannot parse the register declaration `{decl}`")
    return type_bits(m.group(1)), [x.strip() for x in m.group(2).split(",") if x.strip()]


def _shared_decl(k: Kernel, text: str):
    m = _SHARED_DECL.search(text)
    if not m:
        return
    extern, align, ty, name, count = m.groups()
    align = int(align or 1)
    if extern or count == "":
        k.dynamic_sym, k.dynamic_align = name, max(align, 16)
        return
    size = type_bits(ty) // 8 * int(count)
    off = (k.static_shared + align - 1) // align * align
    k.shared_syms[name] = (off, size)
    k.static_shared = off + size


def parse_ptx(ptx: str, entry: str | None = None) -> Kernel:
    """Parse the (first, or the named) `.entry` of a PTX module."""
    src = _strip_comments(ptx)
    starts = [0] + [i + 1 for i, c in enumerate(src) if c == "\n"]
    entries = list(_ENTRY.finditer(src))
    if not entries:
        raise EmulatorError("no .entry in the PTX text")
    m = next((e for e in entries if entry is None or e.group(1) == entry), None)
    if m is None:
        raise EmulatorError(f"no .entry named {entry} in the PTX text (found {[e.group(1) for e in entries]})")
    depth, i = 0, m.end() - 1
    while i < len(src):
        if src[i] == "{":
            depth += 1
        elif src[i] == "}":
            depth -= 1
            if depth == 0:
                break
        i += 1
    else:
        raise EmulatorError(f"the body of .entry {m.group(1)} is not closed")
    k = Kernel(m.group(1), _parse_params(m.group(2), _line_of(starts, m.start())), [], {}, {}, text=ptx)
    for decl in src[:m.start()].split(";"):
        _shared_decl(k, " ".join(decl.split()))
    # pass 1: statements with their scope path, and the names each scope declares
    stmts, scope, nscopes, declared = [], [0], 1, {0: set()}
    for kind, text, line in _statements(src[m.end():i], m.end(), starts):
        if kind == "scope+":
            scope.append(nscopes)
            declared[nscopes] = set()
            nscopes += 1
        elif kind == "scope-":
            if len(scope) == 1:
                raise EmulatorError(f"unbalanced `}}` in .entry {k.name}")
            scope.pop()
        else:
            stmts.append((kind, text, line, tuple(scope)))
            if kind == "label":
                declared[scope[-1]].add(text)
            elif text.lstrip().startswith(".reg"):
                for nm in _reg_names(" ".join(text.split()))[1]:
                    declared[scope[-1]].add(_REG_RANGE.sub(r"\1", nm) if "<" in nm else nm)
    # pass 2: instructions, with scoped names renamed
    rename_cache = {}
    for kind, text, line, sc in stmts:
        rename = rename_cache.get(sc)
        if rename is None:
            rename = {nm: f"{nm}@{s}" for s in sc[1:] for nm in declared[s]}
            rename_cache[sc] = rename
        text = " ".join(text.split())
        if kind == "label":
            k.labels[rename.get(text, text)] = len(k.instructions)
            continue
        if not text:
            continue
        if text.startswith("."):
            if text.startswith(".reg"):
                bits, names = _reg_names(text)
                for nm in names:
                    rm = _REG_RANGE.fullmatch(nm)
                    if rm:
                        for j in range(int(rm.group(2))):
                            k.reg_bits[f"{rm.group(1)}{j}"] = bits
                    else:
                        k.reg_bits[rename.get(nm, nm)] = bits
            else:
                _shared_decl(k, text)
            continue
        pred, neg = None, False
        if text.startswith("@"):
            p, text = text[1:].split(None, 1)
            neg = p.startswith("!")
            p = p.lstrip("!")
            pred = rename.get(p, p)
        om = _OPCODE.match(text)
        if om is None:
            raise EmulatorError(f"cannot parse the PTX statement `{text}` (line {line})")
        parts = om.group(0).split(".")
        rest = text[om.end():].strip()
        try:
            operands = [parse_operand(x, rename) for x in split_top(rest)] if rest else []
        except (ValueError, IndexError):
            raise EmulatorError(f"cannot parse the operands of `{text}` (PTX line {line})") from None
        k.instructions.append(Instruction(len(k.instructions), line, pred, neg, parts[0], parts[1:], operands, text))
    for ins in k.instructions:   # branch targets must exist
        if ins.opcode == "bra" and ins.operands and ins.operands[-1][0] in ("sym", "reg") \
                and ins.operands[-1][1] not in k.labels:
            raise EmulatorError(f"`{ins.text}` branches to an undefined label (PTX line {ins.line})")
    return k
