"""Times the original Python Gorgon (0.3.4, from PyPI) on the seed's
operations, for bench/vs-original.sh.

    python run_original.py hash|noop|first_call N PxT [PxT ...]

prints one line per configuration: `PxT ops_per_sec wall_seconds`.
`first_call` is a no-op whose first call in each process appends
`UNIX_NS PID` to the file named by $FIRST_CALL_FILE (bench/startup.sh), as
gorgon's testkit plugin does with `first_call_file`.
"""
import os
import sys
import time

from gorgon import Gorgon


def operation_hash(number):
    # The seed README's example, verbatim in behaviour.
    import hashlib
    m = hashlib.sha512()
    for _ in range(4000):
        m.update('TEXT {}'.format(number).encode())
    m.hexdigest()
    result = 'SUCCESS'
    if number % 5 == 0:
        result = 'FAIL'
    return result


def operation_noop(number):
    return 'OK'


_called = [False]


def operation_first_call(number):
    # Processes are forked before any call, so each starts with False.
    if not _called[0]:
        _called[0] = True
        began = time.time_ns()
        with open(os.environ['FIRST_CALL_FILE'], 'a') as out:
            out.write('{} {}\n'.format(began, os.getpid()))
    return 'OK'


def main():
    name, count, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    operation = {'hash': operation_hash, 'noop': operation_noop,
                 'first_call': operation_first_call}[name]
    for config in configs:
        processes, threads = (int(x) for x in config.split('x'))
        test = Gorgon(operation)
        start = time.perf_counter()
        test.go(num_operations=count, num_processes=processes,
                num_threads=threads, silent=True)
        wall = time.perf_counter() - start
        print('{} {:.1f} {:.3f}'.format(config, count / wall, wall), flush=True)


if __name__ == '__main__':
    main()
