#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the section 3 man pages of zbl from the doc comments of include/zbl.h.

Usage: man-pages.py HEADER OUTDIR   write OUTDIR/NAME.3 for every public
                                    function, and OUTDIR/zbl.3, the overview
       man-pages.py --list HEADER   print those file names, one a line (CMake
                                    asks at configure time, to install them)

The header is the only source, so a page cannot say something the header does
not. A public function is one declared in the header outside any #if block
(the include guard aside): what is declared only under #ifdef, for internal
use, gets no page. Each must have a doc comment directly above it with
@brief, @return unless it returns void, and a "@par May it copy?" paragraph
(does it copy bytes through user memory or move kernel pages, and when it
falls back to copying, counted where). A missing one, or a doxygen command
this script does not know, fails with FILE:LINE, so the build stops there
instead of installing a page that has drifted.

Comment syntax understood (the subset zbl.h uses): @brief, @param NAME,
@return, @par TITLE, @file, @name TITLE, @{ and @} as block commands; @p NAME,
::NAME, `code`, NAME() and NAME(N) inline; "- " list items. A block command's
paragraph runs to the next blank line or block command, as in doxygen.
"""
import errno
import os
import re
import sys

BLOCK_COMMANDS = ("brief", "param", "return", "par", "file", "name", "{", "}")
COPY_TITLE = "May it copy?"
# Conditional blocks whose declarations are public: only the include guard.
PUBLIC_CONDITIONALS = ("#ifndef ZBL_H",)
SYNOPSIS_WIDTH = 72


class HeaderError(Exception):
    def __init__(self, path, line, msg):
        super().__init__(f"{path}:{line}: {msg}")


class Doc:
    """A parsed doc comment: brief, paragraphs, params, return, titled paragraphs."""

    def __init__(self):
        self.brief = ""
        self.desc = []          # paragraphs: lists of ("text"|"item", str)
        self.params = []        # (name, text)
        self.ret = None
        self.pars = []          # (title, paragraph)
        self.file = None
        self.name = None        # @name group title


class Function:
    def __init__(self, name, ret_type, params, doc, group):
        self.name = name
        self.ret_type = ret_type
        self.params = params    # the text between the parentheses
        self.doc = doc
        self.group = group      # (title, Doc) or None


# ---------------------------------------------------------------------------
# Reading the header.

def comment_lines(text):
    """The lines of a /** ... */ comment without its frame."""
    body = text[3:-2]
    out = []
    for ln in body.split("\n"):
        ln = ln.strip()
        if ln.startswith("*"):
            ln = ln[1:]
        out.append(ln.strip())
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


def parse_doc(lines, path, line):
    """Splits a comment's lines into a Doc, doxygen's way."""
    doc = Doc()
    kind, arg, para = "desc", None, []

    def flush():
        nonlocal para
        if not para:
            return
        if kind == "brief":
            doc.brief = " ".join(t for _, t in para)
        elif kind == "param":
            doc.params.append((arg, " ".join(t for _, t in para)))
        elif kind == "return":
            doc.ret = " ".join(t for _, t in para)
        elif kind == "par":
            doc.pars.append((arg, para))
        else:
            doc.desc.append(para)
        para = []

    def add(text):
        if text.startswith("- "):
            para.append(("item", text[2:].strip()))
        elif para and para[-1][0] == "item":
            para[-1] = ("item", para[-1][1] + " " + text)
        else:
            para.append(("text", text))

    for i, ln in enumerate(lines):
        m = re.match(r"@(\S+)\s*(.*)$", ln)
        if not ln:
            flush()
            kind, arg = "desc", None
            continue
        if not m:
            add(ln)
            continue
        cmd, rest = m.group(1), m.group(2)
        if cmd not in BLOCK_COMMANDS and cmd != "p":
            raise HeaderError(path, line + i, f"unknown doxygen command @{cmd}")
        if cmd == "p":
            add(ln)
            continue
        flush()
        kind, arg = "desc", None
        if cmd == "brief":
            kind = "brief"
            add(rest)
        elif cmd == "param":
            pname, _, text = rest.partition(" ")
            kind, arg = "param", pname
            add(text.strip())
        elif cmd == "return":
            kind = "return"
            add(rest)
        elif cmd == "par":
            if not rest:
                raise HeaderError(path, line + i, "@par without a title")
            kind, arg = "par", rest
        elif cmd == "file":
            doc.file = rest
        elif cmd == "name":
            doc.name = rest
        # @{ and @} carry no text.
    flush()
    for text in doc_texts(doc):
        for cmd in re.findall(r"(?<![\w`])@(\w+)", text):
            if cmd != "p":
                raise HeaderError(path, line, f"unknown doxygen command @{cmd}")
    return doc


def doc_texts(doc):
    """Every text of a comment, in order."""
    texts = [doc.brief] + [t for para in doc.desc for _, t in para]
    texts += [t for _, t in doc.params] + ([doc.ret] if doc.ret else [])
    return texts + [t for _, para in doc.pars for _, t in para]


def strip_comments(code):
    return re.sub(r"/\*.*?\*/", " ", code, flags=re.S)


def read_header(path):
    """(@file Doc, [(group title, Doc)], [Function], version) of the header @path."""
    with open(path, encoding="utf-8") as f:
        src = f.read()
    lines = src.split("\n")
    conds = []              # the open #if lines
    file_doc = None
    groups = []             # (title, Doc) in order
    group = None
    last_doc = None         # (index of its last line, Doc)
    functions = []
    stmt, stmt_line, depth = "", 0, 0
    i = 0
    while i < len(lines):
        ln = lines[i]
        s = ln.strip()
        lineno = i + 1
        if stmt == "" and s.startswith("#"):
            # Preprocessor lines, with their continuations.
            while lines[i].rstrip().endswith("\\"):
                i += 1
            d = re.match(r"#\s*(\w+)", s).group(1)
            if d in ("if", "ifdef", "ifndef"):
                conds.append(re.sub(r"\s+", " ", s))
            elif d in ("else", "elif", "elifdef", "elifndef"):
                conds[-1] = "#else"
            elif d == "endif":
                conds.pop()
            i += 1
            continue
        if stmt == "" and not all(c in PUBLIC_CONDITIONALS for c in conds):
            # Not public (internal, or the C++ wrapper): not read at all.
            i += 1
            continue
        if stmt == "" and s.startswith("/*"):
            j = i
            while "*/" not in lines[j]:
                j += 1
            text = "\n".join(lines[i:j + 1]).strip()
            if text.startswith("/**") and not text.startswith("/**<"):
                doc = parse_doc(comment_lines(text), path, lineno)
                if doc.file is not None:
                    file_doc = doc
                elif doc.name is not None:
                    group = (doc.name, doc)
                    groups.append(group)
                elif "@}" in text:
                    group = None
                last_doc = (j, doc)
            i = j + 1
            continue
        if stmt == "" and not s:
            i += 1
            continue
        # A declaration or definition: read to its end.
        if stmt == "":
            stmt_line = i
        code = strip_comments(ln)
        stmt += code + "\n"
        depth += code.count("{") - code.count("}")
        i += 1
        head = stmt.split("{", 1)[0].strip()
        is_definition = "{" in stmt and head.endswith(")") and depth == 0
        if not (depth == 0 and (code.rstrip().endswith(";") or is_definition)):
            continue
        text, stmt = " ".join((head if is_definition else stmt).split()), ""
        if text.startswith(("typedef", "struct", "extern")):
            continue
        m = re.match(r"(.*?)\b(zbl_[a-z0-9][a-z0-9_]*)\s*\((.*)\)\s*;?$", text)
        if not m:
            continue
        name = m.group(2)
        doc = None
        if last_doc and last_doc[0] == stmt_line - 1:
            doc = last_doc[1]
        if doc is None or not doc.brief:
            raise HeaderError(path, stmt_line + 1,
                              f"{name}: no doc comment with @brief directly above it")
        ret_type = m.group(1).strip()
        if ret_type != "void" and doc.ret is None:
            raise HeaderError(path, stmt_line + 1, f"{name}: no @return")
        if not any(t == COPY_TITLE for t, _ in doc.pars):
            raise HeaderError(path, stmt_line + 1, f"{name}: no '@par {COPY_TITLE}' paragraph")
        functions.append(Function(name, ret_type, m.group(3).strip(), doc, group))
    if file_doc is None:
        raise HeaderError(path, 1, "no @file comment")
    if not functions:
        raise HeaderError(path, 1, "no public functions")
    version = re.search(r'#define ZBL_VERSION_STRING "([^"]+)"', src)
    return file_doc, groups, functions, version.group(1) if version else ""


# ---------------------------------------------------------------------------
# Writing roff.

def roff_escape(text):
    text = text.replace("\\", "\\e")
    # A minus sign where a word starts with one (-EINVAL, -errno, -1), a
    # hyphen inside words (zero-copy).
    return re.sub(r"(?<![\w)])-(?=[\w.])", r"\\-", text)


# A page of another section, as splice(2); lower case, so that O(1) is not one.
MAN_REF = r"\b([a-z_][a-z0-9_]*)\((\d)\)"


def inline(text, functions):
    """Doxygen inline markup to roff fonts."""
    def call(m):
        name = m.group(1)
        return rf"\fB{name}\fR(3)" if name in functions else rf"\fB{name}\fR()"

    out = []
    for k, part in enumerate(re.split(r"`([^`]*)`", text)):
        if k % 2:
            out.append(r"\fB" + part.replace("\\", "\\e").replace("-", r"\-") + r"\fR")
            continue
        part = roff_escape(part)
        part = re.sub(r"@p\s+(\**[A-Za-z_]\w*)", r"\\fI\1\\fR", part)
        part = re.sub(r"::(\w+)", r"\\fB\1\\fR", part)
        part = re.sub(MAN_REF, r"\\fB\1\\fR(\2)", part)
        part = re.sub(r"\b([A-Za-z_]\w*)\(\)", call, part)
        out.append(part)
    return no_hyphens("".join(out))


def no_hyphens(text):
    """Keeps groff from hyphenating words with names like bytes_spliced_out.

    \\% must start the word: further in, after a "(", it marks a break.
    """
    return "".join("\\%" + w if re.search(r"[A-Za-z0-9]_[A-Za-z0-9]", w) else w
                   for w in re.split(r"(\s+)", text))


def plain(text):
    """Markup removed, for the NAME line."""
    return re.sub(r"@p\s+", "", text).replace("::", "").replace("`", "")


def line_safe(text):
    # A text line must not start with a control character.
    return "\\&" + text if text.startswith((".", "'")) else text


def paragraph(para, functions, out):
    in_list = False
    for kind, text in para:
        if kind == "item":
            out.append(".IP \\(bu 2")
            in_list = True
        elif in_list:
            out.append(".PP")
            in_list = False
        out.append(line_safe(inline(text, functions)))


def paragraphs(paras, functions, out):
    for para in paras:
        out.append(".PP")
        paragraph(para, functions, out)


def sentence(text):
    text = text.strip()
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def split_top(text, sep=";"):
    """Splits @text at @sep outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == sep and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return [p for p in parts if p]


ERR = r"-E[A-Z0-9]+"
ERRNO_BY_NAME = {name: num for num, name in errno.errorcode.items()}


def errors(ret):
    """(codes, text) for each part of a @return that starts with error codes."""
    found = []
    for part in split_top(ret):
        m = re.match(rf"({ERR}(?:\s*(?:/|,|or)\s*{ERR})*)\s*(.*)$", part, re.S)
        if not m:
            continue
        codes = re.findall(ERR, m.group(1))
        # Only the first sentence is about these codes.
        text = re.split(r"(?<=\.)\s+(?=[A-Z])", m.group(2))[0].rstrip(" .")
        if not text or re.fullmatch(r"\([^()]*\)", text):
            # Bare codes, or with a note only, mean what they always mean:
            # say it as strerror(3) does.
            meaning = "; ".join(os.strerror(ERRNO_BY_NAME[c[1:]]) for c in codes)
            text = f"{meaning} {text}".strip()
        found.append((codes, text))
    return found


def params(fn):
    """(parameter, span of its name or None) for each parameter of @fn."""
    out = []
    for p in split_top(fn.params, ",") if fn.params != "void" else []:
        # A function pointer's name is inside (*name); any other's is last.
        m = re.search(r"\(\s*\*\s*(\w+)\s*\)", p) or re.search(r"(\w+)\s*(\[\s*\])?$", p)
        out.append((p, m.span(1) if m and m.group(1) != "void" else None))
    return out


def synopsis(fn):
    """The prototype in bold with parameter names in italics, wrapped."""
    pieces = []
    for p, span in params(fn):
        if span:
            a, b = span
            pieces.append((p[:a] + r"\fI" + p[a:b] + r"\fB" + p[b:], len(p)))
        else:
            pieces.append((p, len(p)))
    sep = "" if fn.ret_type.endswith("*") else " "
    start = f"{fn.ret_type}{sep}{fn.name}("
    if not pieces:
        return [r"\fB" + start + r"void);\fR"]
    lines, cur, width = [], r"\fB" + start, len(start)
    indent = " " * len(start)
    for k, (text, n) in enumerate(pieces):
        tail = ");" if k == len(pieces) - 1 else ","
        if width + n + len(tail) > SYNOPSIS_WIDTH and k > 0:
            lines.append(cur.rstrip() + r"\fR")
            cur, width = r"\fB" + indent, len(indent)
        cur += text + tail + " "
        width += n + len(tail) + 1
    lines.append(cur.rstrip() + r"\fR")
    return lines


def references(texts, functions, self_name):
    """SEE ALSO entries: the functions and system calls @texts name."""
    refs = set()
    for t in texts:
        t = re.sub(r"`[^`]*`", "", t)
        for name, sect in re.findall(MAN_REF, t):
            refs.add((int(sect), name))
        for name in re.findall(r"\b(\w+)\(\)", t):
            if name in functions and name != self_name:
                refs.add((3, name))
    return [rf"\fB{n}\fR({s})" for s, n in sorted(refs)]


def header(name, version, out):
    out.append(".\\\" Generated from include/zbl.h by tools/man-pages.py: edit the header.")
    out.append(f'.TH {name.upper()} 3 "" "zbl {version}" "zbl Manual"')


def param_names(fn):
    return [p[slice(*span)] for p, span in params(fn) if span]


def group_applies(fn):
    """Whether the group's comment is about a parameter of @fn: names it in `code`."""
    text = " ".join(t for para in fn.group[1].desc for _, t in para)
    return any(n in param_names(fn) for n in re.findall(r"`(\w+)`", text))


def function_page(fn, functions, version):
    doc, out = fn.doc, []
    header(fn.name, version, out)
    brief = plain(doc.brief).rstrip(".")
    if len(brief) > 1 and brief[0].isupper() and brief[1].islower():
        brief = brief[0].lower() + brief[1:]
    out += [".SH NAME", f"{fn.name} \\- {roff_escape(brief)}"]
    out += [".SH LIBRARY", r"zbl (\fIlibzbl\fR, \fI\-lzbl\fR; \fBpkg\-config \-\-libs zbl\fR)"]
    out += [".SH SYNOPSIS", ".nf", ".B #include <zbl.h>", ".PP"] + synopsis(fn) + [".fi"]
    out += [".SH DESCRIPTION", line_safe(inline(doc.brief, functions))]
    paragraphs(doc.desc, functions, out)
    if fn.group and group_applies(fn):
        # What the header says once for its group about a parameter of this
        # function (the meaning of off).
        paragraphs(fn.group[1].desc, functions, out)
    if doc.params:
        out.append(".SS Parameters")
        for pname, text in doc.params:
            out += [".TP", f"\\fI{roff_escape(pname)}\\fR", line_safe(inline(text, functions))]
    out.append(".SH RETURN VALUE")
    if doc.ret is None:
        out.append(f"\\fB{fn.name}\\fR() returns no value.")
    else:
        out.append(line_safe(f"\\fB{fn.name}\\fR() returns " + inline(doc.ret, functions)))
        errs = errors(doc.ret)
        if errs:
            out.append(".SH ERRORS")
            for codes, text in errs:
                out += [".TP", ", ".join(rf"\fB{roff_escape(c)}\fR" for c in codes)]
                if text:
                    out.append(line_safe(inline(sentence(text), functions)))
    for title, para in doc.pars:
        out.append(f'.SH "{title.upper()}"')
        paragraph(para, functions, out)
    out += [".SH SEE ALSO", ", ".join([r"\fBzbl\fR(3)"] + references(doc_texts(doc), functions,
                                                                   fn.name))]
    return "\n".join(out) + "\n"


def overview_page(file_doc, groups, fns, functions, version):
    out = []
    header("zbl", version, out)
    brief = plain(file_doc.brief).rstrip(".")
    brief = re.sub(r"^zbl:\s*", "", brief)
    out += [".SH NAME", f"zbl \\- {roff_escape(brief)}"]
    out += [".SH LIBRARY", r"zbl (\fIlibzbl\fR, \fI\-lzbl\fR; \fBpkg\-config \-\-libs zbl\fR)"]
    out += [".SH SYNOPSIS", ".nf", ".B #include <zbl.h>", ".fi"]
    out.append(".SH DESCRIPTION")
    paragraphs(file_doc.desc, functions, out)
    out.append(".PP")
    out.append("Each function has its own page, which says what it does, what it returns, "
               "and whether it may copy bytes through user memory.")
    out.append(".SH FUNCTIONS")
    for title, gdoc in groups + [(None, None)]:
        members = [f for f in fns if (f.group[0] if f.group else None) == title]
        if not members:
            continue
        out.append(f'.SS "{roff_escape(title or "Other functions")}"')
        if gdoc:
            paragraphs(gdoc.desc, functions, out)
        for f in members:
            out += [".TP", f"\\fB{f.name}\\fR(3)", line_safe(inline(f.doc.brief, functions))]
    out += [".SH SEE ALSO", ", ".join(references(doc_texts(file_doc), functions, "zbl"))]
    return "\n".join(out) + "\n"


def pages(path):
    """{file name: text} for every page the header makes."""
    file_doc, groups, fns, version = read_header(path)
    functions = {f.name for f in fns}
    result = {"zbl.3": overview_page(file_doc, groups, fns, functions, version)}
    for fn in fns:
        result[fn.name + ".3"] = function_page(fn, functions, version)
    return result


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "--list":
            print("\n".join(pages(argv[2])))
            return 0
        if len(argv) != 3:
            print(__doc__.split("\n\n")[1], file=sys.stderr)
            return 2
        result = pages(argv[1])
    except HeaderError as e:
        print(f"man-pages.py: {e}", file=sys.stderr)
        return 1
    outdir = argv[2]
    os.makedirs(outdir, exist_ok=True)
    # Pages of functions that are gone must not be installed any more.
    for old in os.listdir(outdir):
        if old.endswith(".3") and old not in result:
            os.remove(os.path.join(outdir, old))
    for name, text in result.items():
        with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
