"""What `resnetv2 train`'s machine probe measures and chooses on this machine.

Runs :func:`resnetv2.engine.probe.probe` (the function `train` calls before a long CPU run)
for the `cifar-cpu` net (wide8-s2) and ResNet-20 at batch 128, 32x32, over the four settings
a run with `--channels-last auto` and no `--threads` leaves open, with the precision
`amp: auto` picks on this CPU. Measure on a quiet machine. To see what an AVX2-only CPU
would choose on an AVX-512 one, cap the kernels: `ONEDNN_MAX_CPU_ISA=AVX2
ATEN_CPU_CAPABILITY=avx2 python benchmarks/machine_probe.py --amp off`.

    python benchmarks/machine_probe.py
"""

from __future__ import annotations

import argparse
import os

from _common import environment
from arch_speed_cpu import CANDIDATES

from resnetv2 import create_model
from resnetv2.engine import probe
from resnetv2.engine.precision import cpu_bf16_support
from resnetv2.engine.probe import Setting

#: The `cifar-cpu` net and ResNet-20, as named in arch_speed_cpu.py.
NETS = {name: CANDIDATES[name] for name in ("wide8-s2", "r20")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amp", choices=("auto", "off"), default="auto")
    parser.add_argument("--limit", type=float, default=10.0, help="seconds per probe")
    args = parser.parse_args()
    amp, why = cpu_bf16_support()
    amp = amp and args.amp == "auto"
    print(environment())
    print(f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA')}; bf16 autocast {amp} ({why})")
    for name, options in NETS.items():
        options = dict(options)
        model = create_model(options.pop("depth"), num_classes=10, **options)
        current = Setting(True, 2)
        settings = probe.candidates(current, tune_format=True, tune_threads=True, cores=2)
        result = probe.probe(
            model,
            current,
            settings,
            batch_shape=(128, 3, 32, 32),
            num_classes=10,
            amp=amp,
            limit=args.limit,
        )
        print(f"{name}: {result.describe()}")


if __name__ == "__main__":
    main()
