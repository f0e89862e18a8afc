// Placeholder entry point; the trtexec-compatible CLI grows in tools/kiln/.
#include <cstdio>
int main() { std::puts("kiln"); return 0; }
