"""The path guard: only paths inside a registered root pass, lexically and once resolved."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lm_plugin.py.errors import LibraryError, NotFoundError, PathOutsideLibrary, ValidationError
from lm_plugin.py.services.library.model_records import ModelType
from lm_plugin.py.services.shared.path_guard import MAX_PATH_LENGTH, GuardedPath, PathGuard

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX path forms and symlinks")


def posix(path: Path | str) -> str:
    return str(path).replace("\\", "/")


class Library:
    """A tree with real and symlinked roots, escapes and a look-alike sibling folder."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.loras = base / "lib" / "loras"
        self.loras_evil = base / "lib" / "loras-evil"
        self.outside = base / "outside"
        self.real_checkpoints = base / "disk2" / "checkpoints"
        self.checkpoints = base / "lib" / "checkpoints"  # symlink -> disk2/checkpoints
        self.embeddings = base / "lib" / "embeddings"
        for folder in (self.loras / "style", self.loras_evil, self.outside, self.real_checkpoints / "sdxl", self.embeddings):
            folder.mkdir(parents=True, exist_ok=True)
        (self.loras / "a.safetensors").write_bytes(b"a")
        (self.loras / "style" / "b.safetensors").write_bytes(b"b")
        (self.loras_evil / "evil.safetensors").write_bytes(b"e")
        (self.outside / "secret.txt").write_bytes(b"s")
        (self.real_checkpoints / "sdxl" / "c.safetensors").write_bytes(b"c")
        self.checkpoints.symlink_to(self.real_checkpoints, target_is_directory=True)
        (self.loras / "escape").symlink_to(self.outside, target_is_directory=True)
        (self.loras / "escape_file.safetensors").symlink_to(self.outside / "secret.txt")
        (self.loras / "inner").symlink_to(self.loras / "style", target_is_directory=True)
        (self.loras / "dangling.safetensors").symlink_to(self.loras / "gone.safetensors")
        (self.loras / "to_checkpoints").symlink_to(self.real_checkpoints, target_is_directory=True)
        (self.real_checkpoints / "out").symlink_to(self.outside, target_is_directory=True)

    def roots(self) -> dict[ModelType, list[str]]:
        return {
            ModelType.LORA: [str(self.loras)],
            ModelType.CHECKPOINT: [str(self.checkpoints)],
            ModelType.EMBEDDING: [str(self.embeddings)],
        }

    def real_roots(self) -> list[str]:
        return [os.path.realpath(r) for paths in self.roots().values() for r in paths]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return Library(tmp_path_factory.mktemp("guard"))


@pytest.fixture(scope="module")
def guard(lib: Library) -> PathGuard:
    return PathGuard(lib.roots())


# --- what passes -----------------------------------------------------------------------


def test_file_inside_a_root_passes_with_its_root_and_type(guard: PathGuard, lib: Library) -> None:
    result = guard.check(str(lib.loras / "style" / "b.safetensors"))

    assert result == GuardedPath(
        path=posix(lib.loras / "style" / "b.safetensors"),
        real=posix(os.path.realpath(lib.loras / "style" / "b.safetensors")),
        root=posix(lib.loras),
        model_type=ModelType.LORA,
        relative="style/b.safetensors",
    )


def test_root_itself_passes_with_empty_relative(guard: PathGuard, lib: Library) -> None:
    result = guard.check(str(lib.loras))

    assert result.relative == "" and result.is_root and result.path == posix(lib.loras)


def test_dot_dot_inside_the_root_is_normalised(guard: PathGuard, lib: Library) -> None:
    result = guard.check(f"{lib.loras}/style/../a.safetensors")

    assert result.path == posix(lib.loras / "a.safetensors")
    assert result.relative == "a.safetensors"


def test_backslashes_are_separators(guard: PathGuard, lib: Library) -> None:
    raw = posix(lib.loras / "style" / "b.safetensors").replace("/", "\\")

    assert guard.check(raw).path == posix(lib.loras / "style" / "b.safetensors")


def test_trailing_and_doubled_slashes_are_normalised(guard: PathGuard, lib: Library) -> None:
    assert guard.check(f"{lib.loras}//style/").path == posix(lib.loras / "style")


def test_symlinked_root_keeps_the_registered_path(guard: PathGuard, lib: Library) -> None:
    result = guard.check(f"{lib.checkpoints}/sdxl/c.safetensors", must_exist=True)

    assert result.path == posix(lib.checkpoints / "sdxl" / "c.safetensors")
    assert result.real == posix(os.path.realpath(lib.real_checkpoints / "sdxl" / "c.safetensors"))
    assert result.root == posix(lib.checkpoints)
    assert result.model_type is ModelType.CHECKPOINT


def test_symlink_to_a_folder_inside_the_same_root_passes(guard: PathGuard, lib: Library) -> None:
    result = guard.check(f"{lib.loras}/inner/b.safetensors", must_exist=True)

    assert result.path == posix(lib.loras / "inner" / "b.safetensors")
    assert result.real == posix(os.path.realpath(lib.loras / "style" / "b.safetensors"))


def test_missing_file_passes_unless_it_must_exist(guard: PathGuard, lib: Library) -> None:
    raw = str(lib.loras / "new" / "x.safetensors")

    assert guard.check(raw).relative == "new/x.safetensors"
    with pytest.raises(NotFoundError, match="nothing at path '.*x.safetensors'"):
        guard.check(raw, must_exist=True)


def test_dangling_symlink_is_not_found_when_it_must_exist(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(NotFoundError, match="dangling symlink"):
        guard.check(str(lib.loras / "dangling.safetensors"), must_exist=True)


def test_surrogate_escaped_bytes_name_a_file(tmp_path: Path) -> None:
    root = tmp_path / "loras"
    root.mkdir()
    raw_name = b"caf\xe9.safetensors"  # Latin-1 name: not UTF-8
    with open(os.path.join(os.fsencode(root), raw_name), "wb") as fh:
        fh.write(b"x")
    guard = PathGuard({ModelType.LORA: [str(root)]})

    result = guard.check(f"{root}/{os.fsdecode(raw_name)}", must_exist=True)

    assert result.relative == os.fsdecode(raw_name)


# --- what is refused -------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, 12, b"/lib/loras/a", ["/x"], Path("/x")])
def test_non_string_is_a_validation_error(guard: PathGuard, raw: object) -> None:
    with pytest.raises(ValidationError, match="path must be a string"):
        guard.check(raw)


def test_empty_is_a_validation_error(guard: PathGuard) -> None:
    with pytest.raises(ValidationError, match="path must not be empty"):
        guard.check("")


def test_nul_byte_is_a_validation_error(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(ValidationError, match=r"contains a NUL byte"):
        guard.check(f"{lib.loras}/a\x00.safetensors")


def test_overlong_path_is_a_validation_error(guard: PathGuard, lib: Library) -> None:
    raw = f"{lib.loras}/" + "a" * MAX_PATH_LENGTH

    with pytest.raises(ValidationError, match=r"is too long \(\d+ characters, at most 4096\)"):
        guard.check(raw)


def test_overlong_component_within_the_limit_is_handled(guard: PathGuard, lib: Library) -> None:
    result = guard.check(f"{lib.loras}/" + "a" * 1000)

    assert result.relative == "a" * 1000


def test_lone_surrogate_is_a_validation_error(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(ValidationError, match=r"not valid text") as info:
        guard.check(f"{lib.loras}/\ud800.safetensors")

    info.value.message.encode("utf-8")  # the message itself is safe to log and send


def test_outside_path_names_the_path(guard: PathGuard) -> None:
    with pytest.raises(PathOutsideLibrary) as info:
        guard.check("/etc/passwd")

    assert info.value.message == "path '/etc/passwd' is outside the library"
    assert info.value.to_json() == {
        "success": False,
        "error": "path '/etc/passwd' is outside the library",
        "code": "path_outside_library",
    }


@pytest.mark.parametrize("raw", ["a.safetensors", "loras/a.safetensors", "./a", "../a", "~/a", "~", " /x"])
def test_relative_path_is_outside(guard: PathGuard, raw: str) -> None:
    with pytest.raises(PathOutsideLibrary, match="relative paths are not accepted"):
        guard.check(raw)


@pytest.mark.parametrize(
    "raw",
    ["C:\\models\\loras\\a", "C:/models/a", "c:x", "\\\\server\\share\\a", "//server/share/a", "\\\\?\\C:\\a"],
)
def test_windows_forms_are_outside_on_posix(guard: PathGuard, raw: str) -> None:
    with pytest.raises(PathOutsideLibrary, match="Windows drive or network path"):
        guard.check(raw)


def test_dot_dot_out_of_the_root_is_outside(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(PathOutsideLibrary):
        guard.check(f"{lib.loras}/../../outside/secret.txt")


def test_sibling_with_a_common_prefix_is_outside(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(PathOutsideLibrary):
        guard.check(str(lib.loras_evil / "evil.safetensors"))


def test_dot_dot_into_a_sibling_with_a_common_prefix_is_outside(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(PathOutsideLibrary):
        guard.check(f"{lib.loras}/../loras-evil/evil.safetensors")


def test_symlinked_folder_pointing_outside_is_outside(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(PathOutsideLibrary, match="resolves to a place outside"):
        guard.check(f"{lib.loras}/escape/secret.txt")


def test_symlinked_file_pointing_outside_is_outside(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(PathOutsideLibrary, match="resolves to a place outside"):
        guard.check(str(lib.loras / "escape_file.safetensors"))


def test_symlink_out_of_a_symlinked_root_is_outside(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(PathOutsideLibrary, match="resolves to a place outside"):
        guard.check(f"{lib.checkpoints}/out/secret.txt")


def test_dot_dot_through_a_symlink_is_judged_as_the_kernel_would(guard: PathGuard, lib: Library) -> None:
    # Lexically this is loras/a.safetensors; the kernel resolves escape/.. to outside's parent.
    with pytest.raises(PathOutsideLibrary, match="resolves to a place outside"):
        guard.check(f"{lib.loras}/escape/../a.safetensors")


def test_symlink_into_another_root_is_outside_its_own_root(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(PathOutsideLibrary, match="resolves to a place outside"):
        guard.check(f"{lib.loras}/to_checkpoints/sdxl/c.safetensors")


def test_real_target_of_a_symlinked_root_is_not_the_registered_root(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(PathOutsideLibrary):
        guard.check(str(lib.real_checkpoints / "sdxl" / "c.safetensors"))


def test_model_type_restricts_to_that_types_roots(guard: PathGuard, lib: Library) -> None:
    raw = str(lib.loras / "a.safetensors")

    assert guard.check(raw, model_type=ModelType.LORA).model_type is ModelType.LORA
    with pytest.raises(PathOutsideLibrary):
        guard.check(raw, model_type=ModelType.CHECKPOINT)


def test_root_rejected_when_not_allowed(guard: PathGuard, lib: Library) -> None:
    with pytest.raises(ValidationError, match="is a library root"):
        guard.check(f"{lib.loras}/style/..", allow_root=False)


def test_unknown_root_is_outside_when_no_roots_registered(lib: Library) -> None:
    with pytest.raises(PathOutsideLibrary):
        PathGuard().check(str(lib.loras / "a.safetensors"))


# --- roots, root_for, is_inside -------------------------------------------------------


def test_roots_lists_normalised_roots_per_type(lib: Library) -> None:
    guard = PathGuard({ModelType.LORA: [f"{lib.loras}/", str(lib.loras), str(lib.loras_evil)], ModelType.EMBEDDING: []})

    assert guard.roots(ModelType.LORA) == [posix(lib.loras), posix(lib.loras_evil)]
    assert guard.roots(ModelType.EMBEDDING) == []
    assert guard.roots() == [posix(lib.loras), posix(lib.loras_evil)]


def test_set_roots_replaces_previous_roots(lib: Library) -> None:
    guard = PathGuard({ModelType.LORA: [str(lib.loras)]})

    guard.set_roots({ModelType.LORA: [str(lib.loras_evil)]})

    assert guard.is_inside(str(lib.loras_evil / "evil.safetensors"))
    assert not guard.is_inside(str(lib.loras / "a.safetensors"))


def test_set_roots_rejects_a_single_string_instead_of_a_list(lib: Library) -> None:
    with pytest.raises(ValidationError, match="must be a list of paths"):
        PathGuard({ModelType.LORA: str(lib.loras)})  # type: ignore[dict-item]


def test_nested_roots_resolve_to_the_innermost(lib: Library) -> None:
    guard = PathGuard({ModelType.CHECKPOINT: [str(lib.base / "lib")], ModelType.LORA: [str(lib.loras)]})

    assert guard.root_for(posix(lib.loras / "a.safetensors")) == (posix(lib.loras), ModelType.LORA)
    assert guard.check(str(lib.loras / "a.safetensors")).model_type is ModelType.LORA
    assert guard.check(str(lib.embeddings)).model_type is ModelType.CHECKPOINT


def test_root_for(guard: PathGuard, lib: Library) -> None:
    assert guard.root_for(posix(lib.checkpoints / "sdxl" / "c.safetensors")) == (
        posix(lib.checkpoints),
        ModelType.CHECKPOINT,
    )
    assert guard.root_for(posix(lib.loras_evil / "evil.safetensors")) is None
    assert guard.root_for("relative/a") is None
    assert guard.root_for(12) is None  # type: ignore[arg-type]


def test_is_inside(guard: PathGuard, lib: Library) -> None:
    assert guard.is_inside(str(lib.loras / "a.safetensors"))
    assert guard.is_inside(str(lib.loras / "a.safetensors"), ModelType.LORA)
    assert not guard.is_inside(str(lib.loras / "a.safetensors"), ModelType.EMBEDDING)
    assert not guard.is_inside("/etc/passwd")
    assert not guard.is_inside(None)
    assert not guard.is_inside(f"{lib.loras}/escape/secret.txt")


# --- properties -------------------------------------------------------------------------


def _within(path: str, root: str) -> bool:
    parts, root_parts = Path(path).parts, Path(root).parts
    return parts[: len(root_parts)] == root_parts


def _assert_safe(guard: PathGuard, lib: Library, raw: object) -> None:
    try:
        result = guard.check(raw)
    except LibraryError:
        return
    assert any(_within(os.path.realpath(result.path), real) for real in lib.real_roots())
    assert _within(result.path, result.root)
    assert result.real == posix(os.path.realpath(result.path))
    assert isinstance(raw, str) and any(_within(os.path.realpath(raw.replace("\\", "/")), r) for r in lib.real_roots())


# Names of the test tree (symlinks out, into other roots, look-alike siblings) ...
_TREE_SEGMENTS = st.sampled_from(
    [
        "..", ".", "a.safetensors", "style", "escape", "escape_file.safetensors", "inner", "to_checkpoints",
        "out", "sdxl", "secret.txt", "loras", "loras-evil", "checkpoints", "outside", "disk2", "lib",
    ]
)
# ... and hostile text.
_HOSTILE_SEGMENTS = st.sampled_from(
    [
        "", "/", "//", "\\", "C:", "c:", "\x00", "~", " ", "\ud800", "\udcff", "é", "x" * 300, "y" * 5000,
        "\\\\server", "%2e%2e", "...", ". .",
    ]
)
_SEGMENTS = st.one_of(_TREE_SEGMENTS, _HOSTILE_SEGMENTS)


@pytest.fixture(scope="module")
def prefixes(lib: Library) -> list[str]:
    return [
        "", "/", "//", "\\\\", "C:\\", str(lib.loras), str(lib.loras) + "/", str(lib.checkpoints), str(lib.base),
        str(lib.outside), str(lib.real_checkpoints), str(lib.loras_evil), str(lib.embeddings), "/etc", "~/",
    ]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_built_paths_never_escape(guard: PathGuard, lib: Library, prefixes: list[str], data: st.DataObject) -> None:
    prefix = data.draw(st.sampled_from(prefixes))
    segments = data.draw(st.lists(_SEGMENTS, max_size=10))
    separator = data.draw(st.sampled_from(["/", "\\"]))
    _assert_safe(guard, lib, separator.join([prefix, *segments]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_walks_through_the_tree_never_escape(
    guard: PathGuard, lib: Library, prefixes: list[str], data: st.DataObject
) -> None:
    prefix = data.draw(st.sampled_from([str(lib.loras), str(lib.checkpoints), str(lib.base / "lib")]))
    segments = data.draw(st.lists(_TREE_SEGMENTS, min_size=1, max_size=6))
    _assert_safe(guard, lib, "/".join([prefix, *segments]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.text(), st.binary(), st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2)))
def test_property_arbitrary_input_never_escapes_or_crashes(guard: PathGuard, lib: Library, raw: object) -> None:
    _assert_safe(guard, lib, raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.text())
def test_property_text_after_a_root_never_escapes(guard: PathGuard, lib: Library, suffix: str) -> None:
    _assert_safe(guard, lib, f"{lib.loras}/{suffix}")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.text())
def test_property_root_for_and_is_inside_never_raise(guard: PathGuard, raw: str) -> None:
    guard.root_for(raw)
    assert guard.is_inside(raw) in (True, False)
