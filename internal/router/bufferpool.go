package router

import "sync"

// bufferPool lends ReverseProxy its copy buffers; without one it allocates
// 32 KiB per request.
type bufferPool struct{ pool sync.Pool }

const copyBufferSize = 32 << 10

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, copyBufferSize)
}

func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

var buffers = &bufferPool{}
