package syscalls

//go:generate go run ./gen -arch amd64,arm64
