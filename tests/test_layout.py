"""The layout's rules (docs/architecture.md "Rules of the layout"):

- scenarios/ imports point one way: no import cycle between its modules (a package's
  ``__init__`` counts as a module, and importing ``a.b.c`` runs ``a.b``'s too);
- no module of scenarios/ uses another module's private names (``from x import _y``, ``x._y``);
- every exported symbol of the driver (harness/) begins with its module's prefix;
- every C file under harness/ is in exactly one explicit source list of CMakeLists.txt;
- every folder of scenarios/ and harness/ is named in docs/architecture.md's picture.

Each rule's finder is first shown to fire on a small bad input."""
import ast
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---- Python: the import graph of one package --------------------------------------------------


def modules(root, package="scenarios"):
    """{dotted name: path} of every module of ``package`` under ``root``."""
    found = {}
    for directory, dirs, files in os.walk(os.path.join(root, package)):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
        for name in files:
            if name.endswith(".py"):
                parts = os.path.relpath(os.path.join(directory, name), root)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = os.path.join(directory, name)
    return found


def _imported(tree, known):
    """The modules of ``known`` a module's code imports (anywhere in it), as (module, names):
    names are the ones a ``from`` import takes that are not themselves modules."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.module in known:
            names = [a.name for a in node.names if f"{node.module}.{a.name}" not in known]
            yield node.module, tuple(names)
            for alias in node.names:
                if f"{node.module}.{alias.name}" in known:
                    yield f"{node.module}.{alias.name}", ()


def import_graph(root, package="scenarios"):
    """{module: set of modules it imports}; importing a.b.c also runs a.b (unless the importer
    is inside a.b already: Python has that package in hand then)."""
    known = modules(root, package)
    graph = {}
    for name, path in known.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        edges = set()
        for target, _names in _imported(tree, known):
            parts = target.split(".")
            for depth in range(2, len(parts) + 1):
                parent = ".".join(parts[:depth])
                if parent in known and not (name + ".").startswith(parent + ".") \
                        and parent != name:
                    edges.add(parent)
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One import cycle as a list of modules (first == last), or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        path.append(node)
        for succ in sorted(graph.get(node, ())):
            if state.get(succ) == "open":
                return path[path.index(succ):] + [succ]
            if succ not in state:
                cycle = visit(succ, path)
                if cycle:
                    return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def private_uses(root, package="scenarios"):
    """Every use of another module's private name: (module, 'other._name')."""
    known = modules(root, package)
    found = []
    for name, path in known.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        bound = {}      # local name -> module of ``known`` it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in known:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    if full in known:
                        bound[alias.asname or alias.name] = full
                    elif _private(alias.name) and node.module != name:
                        found.append((name, f"{node.module}.{alias.name}"))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in known and alias.asname:
                        bound[alias.asname] = alias.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in bound and _private(node.attr) \
                    and bound[node.value.id] != name:
                found.append((name, f"{bound[node.value.id]}.{node.attr}"))
    return sorted(set(found))


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _write(root, files):
    for path, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        with open(os.path.join(root, path), "w", encoding="utf-8") as f:
            f.write(text)


def test_the_cycle_finder_sees_a_cycle_through_a_package_init(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/a/__init__.py": "from pkg.a import one\n",
                      "pkg/a/one.py": "def f():\n    from pkg.b import two\n",
                      "pkg/b/__init__.py": "", "pkg/b/two.py": "from pkg import a\n",
                      "pkg/c.py": "from pkg.a import one\nfrom pkg import b\n"})
    assert find_cycle(import_graph(str(tmp_path), "pkg")) == ["pkg.a", "pkg.a.one", "pkg.b.two",
                                                              "pkg.a"]
    _write(tmp_path, {"pkg/b/two.py": "import os\n"})
    assert find_cycle(import_graph(str(tmp_path), "pkg")) is None


def test_no_import_cycle_in_scenarios():
    assert find_cycle(import_graph(REPO)) is None


def test_the_private_name_finder_sees_both_forms(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "_X = 1\nY = 2\ndef _f(): pass\n",
                      "pkg/b.py": "from pkg.a import _X, Y\nfrom pkg import a as other\n"
                                  "other._f()\nother.Y\nother.__name__\n",
                      "pkg/c.py": "from pkg.a import Y as _Y\n_Z = _Y\n"})
    assert private_uses(str(tmp_path), "pkg") == [("pkg.b", "pkg.a._X"), ("pkg.b", "pkg.a._f")]


def test_no_module_uses_another_modules_private_names():
    assert private_uses(REPO) == []


# ---- C: the driver's exported symbols and the explicit source lists ---------------------------

DRIVER_FOLDERS = ("driver", "history", "nemesis", "inside")
PREFIXES = {"generator": ("gen_",), "client_use": ("client_",), "history_binary": ("history_",),
            "pinner": ("pinners_",), "its_faults": ("__wrap_psa_its_",), "main": ("main",),
            "reloads": ("reloads_", "__wrap_psa_load_persistent_key"),
            "slot_walk": ("slot_walk_", "psa_")}    # it stands in for core functions it wraps


def exported_symbols(text):
    """The names a C file defines with external linkage: functions with a body and variables,
    at file scope, not static (prototypes, typedefs, structs and extern declarations are not
    definitions)."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', '""', text)
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", "", text, flags=re.M)
    text = re.sub(r"__attribute__\s*\(\(.*?\)\)", "", text)
    names, depth, statement, in_function = [], 0, "", False
    for char in text:
        if depth == 0 and char == "{":
            in_function = _is_function(statement)
            name = _defined(statement, body=True) if in_function else None
        elif depth == 0 and char == ";":
            name = _defined(statement, body=False)
            statement = ""
        else:
            name = None
        if name:
            names.append(name)
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                statement = "" if in_function else statement + "{}"
        elif depth == 0 and char != ";":
            statement += char
    return names


def _is_function(statement):
    return "(" in statement.split("=")[0]


def _defined(statement, body):
    """The name a file-scope statement defines with external linkage, or None. ``body``: the
    statement is followed by a function body."""
    words = re.findall(r"\w+", statement.split("(")[0].split("=")[0])
    if not words or words[0] in ("typedef", "extern") or "static" in words:
        return None                  # (a macro may come before ``static``)
    if _is_function(statement):      # a definition only with its body; else a prototype
        return re.findall(r"(\w+)\s*\(", statement)[0] if body else None
    if "{}" in statement and "=" not in statement:
        return None                  # struct / union / enum definition
    head = statement.split("=")[0].strip()
    found = re.findall(r"(\w+)\s*(?:\[[^\]]*\]\s*)*$", head)
    return found[0] if found else None


def test_the_symbol_finder_sees_only_external_definitions():
    text = ('/* die() */\n#define X(a) \\\n  int bad(a)\nstatic void helper(void) { die(1); }\n'
            'void die(int code);\nvoid die(int code)\n{\n    if (code) { return; }\n}\n'
            'typedef struct { int a; } thing_t;\nstruct s { int b; };\n'
            'const char *const names[2] = {"a", "b"};\nint counter;\nextern int other;\n'
            'static int hidden = 0;\nUNTRACKED static int quiet(void) { return 0; }\n'
            '__attribute__((noreturn)) void stop(void) { for (;;) {} }\n')
    assert exported_symbols(text) == ["die", "names", "counter", "stop"]


def _driver_files():
    for folder in DRIVER_FOLDERS:
        for name in sorted(os.listdir(os.path.join(REPO, "harness", folder))):
            if name.endswith(".c"):
                yield folder, name


def test_every_exported_driver_symbol_has_its_modules_prefix():
    wrong = []
    for folder, name in _driver_files():
        stem = name[:-2]
        with open(os.path.join(REPO, "harness", folder, name), encoding="utf-8") as f:
            symbols = exported_symbols(f.read())
        allowed = PREFIXES.get(stem, (stem + "_",))
        wrong += [f"harness/{folder}/{name}: {s}" for s in symbols if not s.startswith(allowed)]
    assert wrong == []


def cmake_lists(text):
    """{list name: [file, ...]} of the ``set(<x>_sources ...)`` lists of CMakeLists.txt, with
    the folder their ``list(TRANSFORM ... PREPEND)`` gives them."""
    lists = {}
    for name, body in re.findall(r"set\((\w+_sources)\s+([^)]*)\)", text):
        prefix = re.search(r"list\(TRANSFORM " + name + r' PREPEND "\$\{CMAKE_CURRENT_SOURCE_DIR\}'
                           r'/([^"]*)"\)', text)
        files = re.sub(r"#[^\n]*", "", body).split()
        lists[name] = [(prefix.group(1) if prefix else "") + f for f in files]
    return lists


@pytest.mark.parametrize("broken", ["set(driver_sources main.c)", "list(TRANSFORM x)"])
def test_the_cmake_reader_sees_a_list_and_its_folder(broken):
    text = ('set(driver_sources main.c options.c # the flags\n  client.c)\n'
            'list(TRANSFORM driver_sources PREPEND "${CMAKE_CURRENT_SOURCE_DIR}/harness/driver/")\n')
    assert cmake_lists(text) == {"driver_sources": ["harness/driver/main.c",
                                                    "harness/driver/options.c",
                                                    "harness/driver/client.c"]}
    assert cmake_lists(broken) != cmake_lists(text)


def test_every_harness_c_file_is_in_one_cmake_source_list():
    with open(os.path.join(REPO, "CMakeLists.txt"), encoding="utf-8") as f:
        text = f.read()
    listed = [path for files in cmake_lists(text).values() for path in files]
    listed += re.findall(r'"\$\{CMAKE_CURRENT_SOURCE_DIR\}/(harness/inside/slot_walk\.c)"', text)
    on_disk = sorted(os.path.relpath(os.path.join(d, n), REPO)
                     for d, _dirs, names in os.walk(os.path.join(REPO, "harness"))
                     for n in names if n.endswith(".c"))
    assert sorted(listed) == on_disk


# ---- the picture: every folder of scenarios/ and harness/ is named in docs/architecture.md ------

def folders(root):
    """scenarios/<x>/ and harness/<x>/ folders holding tracked-looking source files."""
    found = set()
    for top in ("scenarios", "harness"):
        for name in sorted(os.listdir(os.path.join(root, top))):
            path = os.path.join(root, top, name)
            if os.path.isdir(path) and not name.startswith((".", "__")) and any(
                    f.endswith((".py", ".c", ".h")) for f in os.listdir(path)):
                found.add(f"{top}/{name}/")
    return found


def unnamed(text, wanted):
    """The folders of ``wanted`` the architecture picture (the first fenced block) never names."""
    picture = text.split("```")[1]
    return sorted(folder for folder in wanted if folder not in picture)


def test_the_picture_reader_sees_a_missing_folder():
    text = "intro\n```\n scenarios/cli/ -> harness/driver/\n```\nscenarios/model/ below\n"
    assert unnamed(text, {"scenarios/cli/", "harness/driver/", "scenarios/model/"}) == \
        ["scenarios/model/"]


def test_every_folder_is_in_the_architecture_picture():
    with open(os.path.join(REPO, "docs", "architecture.md"), encoding="utf-8") as f:
        text = f.read()
    assert unnamed(text, folders(REPO)) == []
