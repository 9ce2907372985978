#include <cstdio>
int main() { std::fprintf(stderr, "no CUDA device\n"); return 2; }
