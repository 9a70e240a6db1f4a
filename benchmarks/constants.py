# A fixed signing secret for the benchmark endpoints and receivers (not a real credential).
BENCH_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
