/// Every model Affinity can train, by command-line name. Adding a model adds one line here.
public enum ModelRegistry {
    nonisolated(unsafe) public static let models: [any Recommender.Type] = [  // immutable after initialisation
        MostPop.self,
        RandomRanking.self,
        ItemKNN.self,
        EASE.self,
        PureSVD.self,
        IALS.self,
        BPRMF.self,
        RelMF.self,
        LightGCN.self,
        NGCF.self,
        SGL.self,
        SimGCL.self,
        LightGCL.self,
        DCCF.self,
        VBPR.self,
        LATTICE.self,
        FREEDOM.self,
        BM3.self,
        SIGE.self,
        CKE.self,
        KGAT.self,
        KGIN.self,
        DiffKG.self,
        SASRec.self,
        TiSASRec.self,
        BERT4Rec.self,
        GRU4Rec.self,
    ]

    public static var names: [String] { models.map { $0.name } }

    /// Other names accepted on the command line.
    public static let aliases: [String: String] = ["pop": "mostpop", "most-pop": "mostpop", "itemcf": "itemknn", "easer": "ease"]

    /// The registered type for `name` (or one of its aliases).
    public static func type(named name: String) throws -> any Recommender.Type {
        let key = aliases[name.lowercased()] ?? name.lowercased()
        guard let type = models.first(where: { $0.name == key }) else { throw ModelError.unknownModel(name) }
        return type
    }

    /// A new, unfitted model named `name` configured from `hyperparameters`; a given setting the model
    /// does not read is an error.
    public static func make(_ name: String, hyperparameters: inout Hyperparameters) throws -> any Recommender {
        let type = try type(named: name)
        let model = try type.init(&hyperparameters)
        try hyperparameters.checkAllRead(model: type.name)
        return model
    }
}
