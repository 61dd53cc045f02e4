"""The extension modules export their PyInit_ entry point and none of the
kernel library's ``sc_*`` symbols.

Every module links its own copy of the kernels, with its own interrupt-check
hook. Were those symbols exported, a module loaded with RTLD_GLOBAL (as some
libraries load their dependencies) would make the dynamic linker resolve the
other modules' ``sc_*`` calls to its copy: they would poll the wrong hook."""
import importlib
import importlib.machinery
import pkgutil
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="ELF dynamic symbol tables (Linux)")


def _extension_modules():
    """(name, path of the shared object) of every compiled module in sparsecore._ext."""
    import sparsecore._ext as ext

    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found = []
    for info in pkgutil.iter_modules(ext.__path__):
        mod = importlib.import_module(f"sparsecore._ext.{info.name}")
        path = getattr(mod, "__file__", None) or ""
        if path.endswith(suffixes):
            found.append((info.name, path))
    return found


def _defined_dynamic_symbols(path):
    """Names of the defined symbols in the dynamic symbol table of ``path``."""
    nm = shutil.which("nm")
    if nm is not None:
        out = subprocess.run([nm, "-D", "--defined-only", path],
                             capture_output=True, text=True, check=True).stdout
        # lines read "address type name"
        return {parts[-1] for parts in map(str.split, out.splitlines()) if len(parts) >= 3}
    try:
        from elftools.elf.elffile import ELFFile
    except ImportError:
        pytest.skip("needs binutils' nm or pyelftools to read the dynamic symbol table")
    with open(path, "rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        return {s.name for s in dynsym.iter_symbols()
                if s.name and s["st_shndx"] != "SHN_UNDEF"}


MODULES = _extension_modules()


def test_every_extension_module_is_found():
    names = {name for name, _ in MODULES}
    assert {"_sparse", "_spmm", "_monarch", "_bcd", "_kron"} <= names, names


@pytest.mark.parametrize("name,path", MODULES, ids=[name for name, _ in MODULES])
def test_no_kernel_symbol_is_exported(name, path):
    symbols = _defined_dynamic_symbols(path)
    # the reader works: the module's entry point is there
    assert f"PyInit_{name}" in symbols, sorted(symbols)[:20]
    leaked = sorted(s for s in symbols if s.startswith("sc_"))
    assert not leaked, f"{path} exports {leaked}"
