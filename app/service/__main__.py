import sys

from app.service.runner import parse_args, run

run(parse_args(sys.argv[1:]))
