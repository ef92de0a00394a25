await Gatehouse.Samples.Backend.BackendApp.Build(args).RunAsync();
