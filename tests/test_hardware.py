"""face_aging.hardware: the CPU's model and instruction sets from /proc/cpuinfo; and the note
precision modes give where bfloat16 would be slower than float32."""
import logging

from face_aging import hardware, precision

ZEN4_CPUINFO = """\
processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 25
model name	: AMD EPYC 9R14 96-Core Processor
flags		: fpu vme sse2 fma avx2 avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni avx512_bitalg

processor	: 1
model name	: Another Model That Must Not Be Read
flags		: fpu amx_tile amx_bf16
"""

SAPPHIRE_RAPIDS_FLAGS = "flags : avx2 fma avx512f avx512_vnni avx512_fp16 amx_tile amx_bf16 amx_int8\n"


def test_cpuinfo_parser_reads_the_first_processor():
    info = hardware.parse_cpuinfo(ZEN4_CPUINFO)
    assert info["model"] == "AMD EPYC 9R14 96-Core Processor"
    sets = info["instruction_sets"]
    assert set(sets) == set(hardware.INSTRUCTION_SETS)
    assert [k for k, v in sets.items() if v] == [
        "fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"]
    assert not sets["amx_tile"] and not sets["amx_bf16"]  # the second processor's line
    assert info["has_bfloat16_dot"] is True


def test_cpuinfo_parser_amx_without_avx512_bf16_and_a_cpu_without_either():
    amx = hardware.parse_cpuinfo(SAPPHIRE_RAPIDS_FLAGS)
    assert amx["model"] is None
    assert amx["instruction_sets"]["amx_bf16"] and amx["instruction_sets"]["avx512_fp16"]
    assert not amx["instruction_sets"]["avx512_bf16"] and amx["has_bfloat16_dot"] is True
    old = hardware.parse_cpuinfo("model name : Old\nflags : sse2 avx avx2 fma\n")
    assert old["has_bfloat16_dot"] is False and old["instruction_sets"]["avx2"]
    arm = hardware.parse_cpuinfo("Features : fp asimd bf16\n")  # ARM spelling, no x86 flag
    assert not any(arm["instruction_sets"].values())


def test_cpu_info_of_a_missing_file_claims_nothing(tmp_path):
    info = hardware.cpu_info(str(tmp_path / "no_cpuinfo"))
    assert info["source"] is None and info["model"]
    assert not any(info["instruction_sets"].values()) and info["has_bfloat16_dot"] is False


NO_BF16 = hardware.parse_cpuinfo("model name : AMD EPYC\nflags : fpu sse2 avx avx2 fma\n")


def test_bfloat16_on_an_x86_cpu_without_bf16_instructions_gets_a_note():
    note = precision.slow_bfloat16_note("bfloat16", cpu=NO_BF16, gpu_count=0)
    assert note.startswith("--mixed_precision=bfloat16: this CPU (AMD EPYC) has neither "
                           "AVX-512 BF16 nor AMX") and "10x slower than with --mixed_precision=none" in note
    assert precision.slow_bfloat16_note("bf16", cpu=NO_BF16, gpu_count=0) == note  # an alias


def test_no_note_where_bfloat16_is_fast_or_not_asked_for():
    zen4 = hardware.parse_cpuinfo(ZEN4_CPUINFO)
    amx = hardware.parse_cpuinfo(SAPPHIRE_RAPIDS_FLAGS)
    arm = hardware.parse_cpuinfo("Features : fp asimd bf16\n")
    unknown = hardware.parse_cpuinfo("")
    assert precision.slow_bfloat16_note("bfloat16", cpu=zen4, gpu_count=0) is None
    assert precision.slow_bfloat16_note("bfloat16", cpu=amx, gpu_count=0) is None
    assert precision.slow_bfloat16_note("bfloat16", cpu=NO_BF16, gpu_count=1) is None  # a GPU
    assert precision.slow_bfloat16_note("bfloat16", cpu=arm, gpu_count=0) is None  # not judged
    assert precision.slow_bfloat16_note("bfloat16", cpu=unknown, gpu_count=0) is None
    for mode in ("none", "float16", False, None):
        assert precision.slow_bfloat16_note(mode, cpu=NO_BF16, gpu_count=0) is None


def test_keras_policy_logs_the_note_once_per_process(monkeypatch, caplog):
    import keras
    import tensorflow as tf

    monkeypatch.setattr(precision, "bfloat16_checked", False)
    monkeypatch.setattr(hardware, "cpu_info", lambda: NO_BF16)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    with caplog.at_level(logging.WARNING, logger="face_aging"):
        for _ in range(3):
            with precision.keras_policy("bfloat16"):
                assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        with precision.keras_policy("none"):
            assert keras.mixed_precision.global_policy().name == "float32"
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 1 and "this CPU (AMD EPYC) has neither AVX-512 BF16" in notes[0]
