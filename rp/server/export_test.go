package server

// accessNames are the access levels as the authorization tests name them.
var accessNames = map[access]string{
	public: "public", anySession: "anySession", registration: "registration", ownKeys: "ownKeys",
	userRole: "user", helpdeskRole: "helpdesk", adminRole: "admin",
}

// RouteAccess lists every route pattern with its access level's name.
func (s *Server) RouteAccess() map[string]string {
	out := map[string]string{}
	for p, a := range s.access {
		out[p] = accessNames[a]
	}
	return out
}
