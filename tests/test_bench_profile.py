"""``bench/profile_dense.py`` reads each matmul's FLOPs from the optimised HLO
of an XLA-compiled function: checked on a small one, in a fresh process (the
script sets its CPU switches and absl flags when imported)."""
import json
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROGRAM = """
import json, sys
sys.path.insert(0, "bench")
import profile_dense
import tensorflow as tf

@tf.function(jit_compile=True)
def layers(x, w1, w2):
    return tf.matmul(tf.sigmoid(tf.matmul(x, w1)), w2, transpose_b=True)

args = tf.ones([3, 4]), tf.ones([4, 5]), tf.ones([6, 5])
table = profile_dense.hlo_instructions(layers.experimental_get_compiler_ir(*args)(stage="optimized_hlo"))
print(json.dumps(sorted(flops for opcode, _, flops in table.values() if opcode == "dot")))
print(json.dumps(sum(flops for opcode, _, flops in table.values() if opcode != "dot")))
"""


def test_hlo_instructions_counts_each_matmuls_flops():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", PROGRAM], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    dots, others = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    # [3, 4] x [4, 5]: 2 * 3 * 5 * 4; [3, 5] x [5, 6] (the second transposed): 2 * 3 * 6 * 5
    assert dots == [120, 180]
    assert others == 0
