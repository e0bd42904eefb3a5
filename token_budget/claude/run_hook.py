"""The hooks' command: `python -S …/token_budget/claude/run_hook.py EVENT` (-S: no site-packages scan, the largest
fixed cost of a Python start). Python compiles a script on every run, so this one only loads launch.py, whose
compiled code is kept, by its path: launch.main is the hook process."""

if __name__ == "__main__":
    import sys
    from _frozen_importlib import module_from_spec  # importlib.util's, without importing importlib
    from _frozen_importlib_external import spec_from_file_location

    spec = spec_from_file_location("token_budget.claude.launch", __file__.rpartition("/")[0] + "/launch.py")
    launch = sys.modules[spec.name] = module_from_spec(spec)
    spec.loader.exec_module(launch)
    launch.main()
